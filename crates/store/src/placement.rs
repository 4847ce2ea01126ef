//! Which nodes serve a function: its pins when any of them is live,
//! otherwise rendezvous hashing (highest random weight) of the function's
//! name over the live nodes. Pure: the caller passes who is live.
//!
//! Rendezvous hashing gives every (function, node) pair a score and takes
//! the highest: when a node joins it takes over only the functions it now
//! scores highest for (about 1/N of them), and when one leaves only its own
//! functions move. Every node computes the same answer from the same rows,
//! so no node has to tell another where a function lives. Scores depend on
//! node names (stable across restarts), not on ids.

/// How many nodes an automatically placed function gets. One home keeps a
/// function's warm instances in one place (fewer cold starts); a function
/// that needs more nodes is pinned to them.
pub const AUTO_HOMES: usize = 1;

/// The nodes serving `function`, best first. `live` are the nodes that may
/// serve (alive, not draining), `pins` the function's placement row. Pinned
/// nodes that are live keep their order; when none is, the function is
/// placed automatically, so losing every pinned node does not lose the
/// function. Empty only when `live` is.
pub fn home_nodes<'n>(
    function: &str,
    live: &[&'n str],
    pins: Option<&[String]>,
    auto: usize,
) -> Vec<&'n str> {
    if let Some(pins) = pins {
        let pinned: Vec<&str> = pins
            .iter()
            .filter_map(|pin| live.iter().find(|node| **node == pin.as_str()).copied())
            .collect();
        if !pinned.is_empty() {
            return pinned;
        }
    }
    let mut scored: Vec<(u64, &str)> = live.iter().map(|n| (score(function, n), *n)).collect();
    // Ties (never in practice) break by name, so every node agrees.
    scored.sort_unstable_by(|a, b| b.0.cmp(&a.0).then_with(|| a.1.cmp(b.1)));
    scored.dedup_by(|a, b| a.1 == b.1);
    scored
        .into_iter()
        .take(auto.max(1))
        .map(|(_, n)| n)
        .collect()
}

/// A well-mixed 64-bit score of the pair: FNV-1a over both names (with a
/// separator no name contains) and SplitMix64's finaliser, since FNV alone
/// mixes the last bytes poorly. Fixed here rather than std's hasher, whose
/// output may change between Rust releases (nodes of two rouse builds
/// must agree).
fn score(function: &str, node: &str) -> u64 {
    let mut h: u64 = 0xcbf2_9ce4_8422_2325;
    for b in function.bytes().chain([0u8]).chain(node.bytes()) {
        h ^= u64::from(b);
        h = h.wrapping_mul(0x0000_0100_0000_01b3);
    }
    h ^= h >> 30;
    h = h.wrapping_mul(0xbf58_476d_1ce4_e5b9);
    h ^= h >> 27;
    h = h.wrapping_mul(0x94d0_49bb_1331_11eb);
    h ^ (h >> 31)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn functions(n: usize) -> Vec<String> {
        (0..n).map(|i| format!("svc-dev-fn{i}")).collect()
    }

    fn home<'n>(function: &str, live: &[&'n str]) -> &'n str {
        home_nodes(function, live, None, 1)[0]
    }

    #[test]
    fn pins_win_while_one_of_them_is_live() {
        let live = ["a", "b", "c"];
        let pins = vec!["c".to_string(), "x".to_string(), "a".to_string()];
        assert_eq!(home_nodes("f", &live, Some(&pins), 1), ["c", "a"]);
        // No pinned node live: automatic, over who is.
        let gone = vec!["x".to_string()];
        assert_eq!(
            home_nodes("f", &live, Some(&gone), 1),
            home_nodes("f", &live, None, 1)
        );
        assert_eq!(
            home_nodes("f", &live, Some(&[]), 1),
            home_nodes("f", &live, None, 1)
        );
        assert!(home_nodes("f", &[], Some(&pins), 1).is_empty());
    }

    #[test]
    fn the_answer_does_not_depend_on_the_order_nodes_are_listed_in() {
        for f in functions(50) {
            assert_eq!(
                home_nodes(&f, &["a", "b", "c", "d"], None, 2),
                home_nodes(&f, &["d", "b", "a", "c"], None, 2)
            );
        }
    }

    #[test]
    fn k_homes_are_distinct_and_start_with_the_single_home() {
        let live = ["a", "b", "c"];
        for f in functions(50) {
            let three = home_nodes(&f, &live, None, 3);
            let mut sorted = three.clone();
            sorted.sort_unstable();
            assert_eq!(sorted, ["a", "b", "c"]);
            assert_eq!(three[0], home(&f, &live));
            assert_eq!(home_nodes(&f, &live, None, 9).len(), 3);
        }
    }

    #[test]
    fn functions_spread_evenly() {
        let live = ["a", "b", "c", "d"];
        let fs = functions(4000);
        for node in live {
            let count = fs.iter().filter(|f| home(f, &live) == node).count();
            assert!((800..1200).contains(&count), "{node}: {count} of 4000");
        }
    }

    #[test]
    fn a_node_joining_or_leaving_moves_about_one_nth_of_the_functions() {
        let fs = functions(4000);
        let before = ["a", "b", "c", "d"];
        let joined = ["a", "b", "c", "d", "e"];
        let moved: Vec<&String> = fs
            .iter()
            .filter(|f| home(f, &before) != home(f, &joined))
            .collect();
        // 1/5 expected; and every one that moved went to the new node.
        assert!((650..950).contains(&moved.len()), "{}", moved.len());
        assert!(moved.iter().all(|f| home(f, &joined) == "e"));

        let left = ["a", "b", "d"];
        let moved: Vec<&String> = fs
            .iter()
            .filter(|f| home(f, &before) != home(f, &left))
            .collect();
        // Only c's functions move (1/4 expected), to the survivors.
        assert!((850..1150).contains(&moved.len()), "{}", moved.len());
        assert!(moved.iter().all(|f| home(f, &before) == "c"));
    }
}
