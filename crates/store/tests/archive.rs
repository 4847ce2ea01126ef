//! Packing, checking and unpacking against real files, including archives
//! built byte by byte to attack the extractor.

use std::fs;
use std::io::Write;
use std::os::unix::fs::{symlink, PermissionsExt};
use std::path::{Path, PathBuf};

use rouse_store::archive::{self, ArchiveError};
use tar::{EntryType, Header};

fn write(path: &Path, content: &str, mode: u32) {
    fs::create_dir_all(path.parent().unwrap()).unwrap();
    fs::write(path, content).unwrap();
    fs::set_permissions(path, fs::Permissions::from_mode(mode)).unwrap();
}

fn mode_of(path: &Path) -> u32 {
    fs::symlink_metadata(path).unwrap().permissions().mode() & 0o777
}

fn pack(dir: &Path, extra: &[String]) -> Vec<u8> {
    archive::pack_dir(dir, extra, &mut |_| {}).unwrap()
}

#[test]
fn pack_check_unpack_round_trip_keeps_content_modes_and_symlinks() {
    let project = tempfile::tempdir().unwrap();
    let p = project.path();
    write(&p.join("bootstrap"), "#!/bin/sh\necho hi\n", 0o755);
    write(
        &p.join("app/handler.py"),
        "def handler(e, c): pass\n",
        0o644,
    );
    write(&p.join("app/secret.conf"), "k=v\n", 0o600);
    fs::create_dir(p.join("empty")).unwrap();
    symlink("app/handler.py", p.join("current")).unwrap();
    symlink("..", p.join("app/up")).unwrap();
    symlink(".", p.join("self")).unwrap();

    let bytes = pack(p, &[]);
    archive::check(bytes.as_slice()).unwrap();

    let out = tempfile::tempdir().unwrap();
    let dest = out.path().join("dest");
    archive::unpack(bytes.as_slice(), &dest).unwrap();

    assert_eq!(
        archive::list_files(&dest).unwrap(),
        [
            "app/handler.py",
            "app/secret.conf",
            "app/up",
            "bootstrap",
            "current",
            "self"
        ]
        .map(PathBuf::from)
    );
    assert!(dest.join("empty").is_dir());
    assert_eq!(
        fs::read_to_string(dest.join("bootstrap")).unwrap(),
        "#!/bin/sh\necho hi\n"
    );
    assert_eq!(mode_of(&dest.join("bootstrap")), 0o755);
    assert_eq!(mode_of(&dest.join("app/handler.py")), 0o644);
    assert_eq!(mode_of(&dest.join("app/secret.conf")), 0o600);

    assert_eq!(
        fs::read_link(dest.join("current")).unwrap(),
        Path::new("app/handler.py")
    );
    assert_eq!(
        fs::read_to_string(dest.join("current")).unwrap(),
        "def handler(e, c): pass\n"
    );
    assert_eq!(fs::read_link(dest.join("app/up")).unwrap(), Path::new(".."));
    assert!(dest.join("app/up/bootstrap").is_file());
    assert_eq!(fs::read_link(dest.join("self")).unwrap(), Path::new("."));
}

#[test]
fn an_unchanged_tree_packs_to_the_same_bytes() {
    let project = tempfile::tempdir().unwrap();
    for name in ["b", "a", "c/d", "c/a"] {
        write(&project.path().join(name), name, 0o644);
    }
    assert_eq!(pack(project.path(), &[]), pack(project.path(), &[]));
}

#[test]
fn ignored_paths_are_not_packed() {
    let project = tempfile::tempdir().unwrap();
    let p = project.path();
    write(&p.join("app.py"), "x", 0o644);
    write(&p.join(".git/HEAD"), "ref", 0o644);
    write(&p.join("__pycache__/app.cpython-312.pyc"), "x", 0o644);
    write(&p.join("lib/__pycache__/m.cpython-312.pyc"), "x", 0o644);
    write(&p.join("lib/m.py"), "x", 0o644);
    write(&p.join("lib/old.pyc"), "x", 0o644);
    write(&p.join("secrets/key.pem"), "x", 0o644);
    write(&p.join("debug.log"), "x", 0o644);
    write(&p.join("lib/deep/trace.log"), "x", 0o644);
    write(&p.join("build/out"), "x", 0o644);
    write(&p.join("lib/build/kept"), "x", 0o644);
    write(&p.join("cache"), "a file, not a dir", 0o644);
    write(
        &p.join(".rouseignore"),
        "# local junk\n\nsecrets\n*.log\n/build\ncache/\n",
        0o644,
    );

    let extra = archive::read_ignore_file(p).unwrap();
    assert_eq!(extra, ["secrets", "*.log", "/build", "cache/"]);

    let bytes = pack(p, &extra);
    let out = tempfile::tempdir().unwrap();
    archive::unpack(bytes.as_slice(), out.path()).unwrap();
    assert_eq!(
        archive::list_files(out.path()).unwrap(),
        [
            ".rouseignore",
            "app.py",
            "cache",
            "lib/build/kept",
            "lib/m.py"
        ]
        .map(PathBuf::from)
    );
}

#[test]
fn a_missing_ignore_file_means_no_extra_patterns_and_bad_patterns_are_errors() {
    let project = tempfile::tempdir().unwrap();
    assert!(archive::read_ignore_file(project.path())
        .unwrap()
        .is_empty());

    for pattern in ["a[", "!keep.txt"] {
        let err = archive::pack_dir(project.path(), &[pattern.to_string()], &mut |_| {});
        assert!(
            matches!(err, Err(ArchiveError::BadPattern { pattern: ref p, .. }) if p == pattern),
            "{pattern}: {err:?}"
        );
    }
}

#[test]
fn progress_reports_file_bytes_added() {
    let project = tempfile::tempdir().unwrap();
    write(&project.path().join("a"), &"x".repeat(1000), 0o644);
    write(&project.path().join("b/c"), &"y".repeat(234), 0o644);
    let mut last = 0;
    archive::pack_dir(project.path(), &[], &mut |n| {
        assert!(n >= last);
        last = n;
    })
    .unwrap();
    assert_eq!(last, 1234);
}

#[test]
fn a_project_symlink_leaving_the_project_is_refused_at_pack_time() {
    let project = tempfile::tempdir().unwrap();
    symlink("/usr/bin/python3", project.path().join("python")).unwrap();
    match archive::pack_dir(project.path(), &[], &mut |_| {}) {
        Err(ArchiveError::Unsafe { path, .. }) => assert_eq!(path, "python"),
        other => panic!("expected unsafe, got {other:?}"),
    }
}

// ---- hand-built archives -------------------------------------------------

/// One raw tar entry. Names are copied into the header byte for byte, so
/// `..` and absolute paths really appear in the archive (the tar crate's
/// `set_path` would refuse them).
struct Raw<'a> {
    path: &'a [u8],
    kind: EntryType,
    link: &'a [u8],
    data: &'a [u8],
}

fn file<'a>(path: &'a str, data: &'a str) -> Raw<'a> {
    Raw {
        path: path.as_bytes(),
        kind: EntryType::Regular,
        link: b"",
        data: data.as_bytes(),
    }
}

fn link<'a>(kind: EntryType, path: &'a str, target: &'a str) -> Raw<'a> {
    Raw {
        path: path.as_bytes(),
        kind,
        link: target.as_bytes(),
        data: b"",
    }
}

fn tarball(entries: &[Raw<'_>]) -> Vec<u8> {
    let mut builder = tar::Builder::new(Vec::new());
    for entry in entries {
        let mut header = Header::new_gnu();
        header.as_old_mut().name[..entry.path.len()].copy_from_slice(entry.path);
        header.as_old_mut().linkname[..entry.link.len()].copy_from_slice(entry.link);
        header.set_entry_type(entry.kind);
        header.set_size(entry.data.len() as u64);
        header.set_mode(0o644);
        header.set_cksum();
        builder.append(&header, entry.data).unwrap();
    }
    let tar_bytes = builder.into_inner().unwrap();

    // The names must survive exactly as written, or the test proves nothing.
    let mut reread = tar::Archive::new(tar_bytes.as_slice());
    for (entry, raw) in reread.entries().unwrap().zip(entries) {
        let entry = entry.unwrap();
        assert_eq!(&*entry.path_bytes(), raw.path);
    }

    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::default());
    gz.write_all(&tar_bytes).unwrap();
    gz.finish().unwrap()
}

/// Every path under `root`, without following symlinks.
fn tree(root: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let mut stack = vec![root.to_path_buf()];
    while let Some(dir) = stack.pop() {
        for entry in fs::read_dir(&dir).unwrap() {
            let entry = entry.unwrap();
            let path = entry.path();
            out.push(path.strip_prefix(root).unwrap().to_path_buf());
            if entry.file_type().unwrap().is_dir() {
                stack.push(path);
            }
        }
    }
    out.sort();
    out
}

/// `check` and `unpack` both refuse the archive with an `Unsafe` error naming
/// `bad_entry`, and nothing appears next to `dest` (the sandbox `work` dir
/// holds only `dest`, and `outside` stays empty).
fn assert_refused(entries: &[Raw<'_>], bad_entry: &str) {
    let bytes = tarball(entries);
    match archive::check(bytes.as_slice()) {
        Err(ArchiveError::Unsafe { path, .. }) => assert_eq!(path, bad_entry),
        other => panic!("check accepted {bad_entry}: {other:?}"),
    }

    let sandbox = tempfile::tempdir().unwrap();
    let work = sandbox.path().join("work");
    let dest = work.join("dest");
    fs::create_dir_all(sandbox.path().join("outside")).unwrap();
    match archive::unpack(bytes.as_slice(), &dest) {
        Err(ArchiveError::Unsafe { path, .. }) => assert_eq!(path, bad_entry),
        other => panic!("unpack accepted {bad_entry}: {other:?}"),
    }
    let everything = tree(sandbox.path());
    for path in &everything {
        assert!(
            path.starts_with("work/dest")
                || path == Path::new("work")
                || path == Path::new("outside"),
            "{bad_entry}: {} was written outside dest",
            path.display()
        );
    }
    // No symlink that escapes may be left in dest either.
    for path in tree(&dest) {
        let full = dest.join(&path);
        if let Ok(target) = fs::read_link(&full) {
            assert!(
                !target.is_absolute() && !target.starts_with("../.."),
                "{bad_entry}: escaping symlink {} left behind",
                path.display()
            );
        }
    }
}

#[test]
fn parent_dir_paths_are_refused() {
    assert_refused(&[file("ok", "fine"), file("../evil", "x")], "../evil");
    assert_refused(&[file("a/../../evil", "x")], "a/../../evil");
    // `..` that would stay inside is still refused: a real packer never writes it.
    assert_refused(&[file("a/../b", "x")], "a/../b");
}

#[test]
fn absolute_paths_are_refused() {
    assert_refused(&[file("/etc/evil", "x")], "/etc/evil");

    // And one aimed at a place this test can see.
    let target = tempfile::tempdir().unwrap();
    let aimed = target.path().join("evil");
    let aimed = aimed.to_str().unwrap();
    assert_refused(&[file(aimed, "x")], aimed);
    assert!(!Path::new(aimed).exists());
}

#[test]
fn symlinks_out_of_the_root_are_refused() {
    assert_refused(&[link(EntryType::Symlink, "evil", "/etc")], "evil");
    assert_refused(
        &[
            link(EntryType::Symlink, "evil", "/tmp"),
            file("evil/planted", "x"),
        ],
        "evil",
    );
    assert_refused(&[link(EntryType::Symlink, "evil", "../../x")], "evil");
    assert_refused(&[link(EntryType::Symlink, "a", "../..")], "a");
    assert_refused(&[link(EntryType::Symlink, "dir/evil", "../..")], "dir/evil");
}

#[test]
fn symlinks_that_escape_through_other_symlinks_are_refused() {
    // Lexically `link/..` is the root; on disk it is the root's parent.
    assert_refused(
        &[
            link(EntryType::Symlink, "evil", "link/.."),
            link(EntryType::Symlink, "link", "."),
        ],
        "evil",
    );
    // A symlink chain that loops.
    assert_refused(
        &[
            link(EntryType::Symlink, "a", "b/x"),
            link(EntryType::Symlink, "b", "a/x"),
        ],
        "a",
    );
}

#[test]
fn entries_beneath_a_symlink_are_refused() {
    // `dir/link` points at the root (allowed), but writing through it would
    // place `evil -> ../..` in the root, one level above where it claims.
    assert_refused(
        &[
            link(EntryType::Symlink, "dir/link", ".."),
            link(EntryType::Symlink, "dir/link/evil", "../.."),
        ],
        "dir/link/evil",
    );
    assert_refused(
        &[
            Raw {
                path: b"sub/",
                kind: EntryType::Directory,
                link: b"",
                data: b"",
            },
            link(EntryType::Symlink, "l", "sub"),
            file("l/f", "x"),
        ],
        "l/f",
    );
    // A symlink replacing a directory that already has entries.
    assert_refused(
        &[file("d/f", "x"), link(EntryType::Symlink, "d", "..")],
        "d",
    );
}

#[test]
fn hard_links_out_of_the_root_are_refused() {
    assert_refused(&[link(EntryType::Link, "evil", "../x")], "evil");
    assert_refused(&[link(EntryType::Link, "evil", "/etc/passwd")], "evil");
    // Only files of the archive itself may be linked.
    assert_refused(&[link(EntryType::Link, "evil", "nothing-here")], "evil");
}

#[test]
fn special_files_are_refused() {
    let special = |kind| Raw {
        path: b"pipe",
        kind,
        link: b"",
        data: b"",
    };
    assert_refused(&[special(EntryType::Fifo)], "pipe");
    assert_refused(&[special(EntryType::Char)], "pipe");
    assert_refused(&[special(EntryType::Block)], "pipe");
}

#[test]
fn duplicate_entries_are_refused() {
    assert_refused(&[file("a", "1"), file("a", "2")], "a");
}

#[test]
fn symlinks_that_stay_inside_are_unpacked() {
    let bytes = tarball(&[
        file("dir/data.txt", "inside"),
        link(EntryType::Symlink, "link", "."),
        link(EntryType::Symlink, "dir/link", ".."),
        link(EntryType::Symlink, "dir/alias", "data.txt"),
        link(EntryType::Link, "dir/hard", "dir/data.txt"),
    ]);
    archive::check(bytes.as_slice()).unwrap();
    let out = tempfile::tempdir().unwrap();
    archive::unpack(bytes.as_slice(), out.path()).unwrap();
    assert_eq!(
        fs::read_to_string(out.path().join("link/dir/link/dir/alias")).unwrap(),
        "inside"
    );
    assert_eq!(
        fs::read_to_string(out.path().join("dir/hard")).unwrap(),
        "inside"
    );
}

#[test]
fn corrupt_or_truncated_archives_are_malformed() {
    let project = tempfile::tempdir().unwrap();
    write(
        &project.path().join("a"),
        &"some content ".repeat(500),
        0o644,
    );
    let bytes = pack(project.path(), &[]);

    let truncated = &bytes[..bytes.len() - 10];
    assert!(matches!(
        archive::check(truncated),
        Err(ArchiveError::Malformed(_))
    ));
    assert!(matches!(
        archive::check(&b"plain text"[..]),
        Err(ArchiveError::Malformed(_))
    ));
}

#[test]
fn unpack_never_follows_a_symlink_already_in_dest() {
    let sandbox = tempfile::tempdir().unwrap();
    let outside = sandbox.path().join("outside");
    let dest = sandbox.path().join("dest");
    fs::create_dir_all(&outside).unwrap();
    fs::create_dir_all(&dest).unwrap();
    symlink(&outside, dest.join("sub")).unwrap();
    symlink(outside.join("file"), dest.join("file")).unwrap();

    // Each archive is fine on its own; dest is what is hostile.
    for entries in [
        vec![file("sub/planted", "x")],
        vec![file("file", "x")],
        vec![Raw {
            path: b"sub/dir/",
            kind: EntryType::Directory,
            link: b"",
            data: b"",
        }],
    ] {
        let bytes = tarball(&entries);
        archive::check(bytes.as_slice()).unwrap();
        assert!(archive::unpack(bytes.as_slice(), &dest).is_err());
        assert!(tree(&outside).is_empty(), "{:?}", tree(&outside));
    }
}

/// A tar.gz of one file of `mb` MB of zeros, made by tar and gzip.
fn zeros_tar_gz(mb: u64) -> Vec<u8> {
    let dir = tempfile::tempdir().unwrap();
    std::fs::File::create(dir.path().join("zeros.bin"))
        .and_then(|f| f.set_len(mb * 1024 * 1024))
        .unwrap();
    let out = std::process::Command::new("tar")
        .args(["-czf", "-", "-C"])
        .arg(dir.path())
        .arg("zeros.bin")
        .output()
        .unwrap();
    assert!(out.status.success());
    out.stdout
}

#[test]
fn archives_past_the_limits_or_the_ratio_are_refused() {
    use rouse_store::archive::{check_within, Limits};
    let bomb = zeros_tar_gz(40);
    let roomy = Limits {
        max_unpacked_bytes: 1 << 40,
        ..Limits::default()
    };
    // Allowed in size, but 40 MB from ~40 KB is a bomb.
    match check_within(bomb.as_slice(), &roomy) {
        Err(ArchiveError::TooLarge(message)) => {
            assert!(message.contains("decompression bomb"), "{message}")
        }
        other => panic!("not refused as a bomb: {other:?}"),
    }
    let tight = Limits {
        max_unpacked_bytes: 10 * 1024 * 1024,
        ..Limits::default()
    };
    // Refused on the declared size, before any of it is decompressed.
    match check_within(bomb.as_slice(), &tight) {
        Err(ArchiveError::TooLarge(message)) => assert!(message.contains("unpacked"), "{message}"),
        other => panic!("not refused for its size: {other:?}"),
    }
    let few = Limits {
        max_files: 1,
        ..Limits::default()
    };
    let project = two_files();
    let two = archive::pack_dir(project.path(), &[], &mut |_| {}).unwrap();
    assert!(matches!(
        check_within(two.as_slice(), &few),
        Err(ArchiveError::TooLarge(_))
    ));
}

fn two_files() -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    fs::write(dir.path().join("a"), "a").unwrap();
    fs::write(dir.path().join("b"), "b").unwrap();
    dir
}

#[test]
fn a_large_archive_that_does_not_compress_is_no_bomb() {
    // 40 MB of random bytes: past the ratio floor, at a ratio of about 1.
    let dir = tempfile::tempdir().unwrap();
    let mut random = Vec::with_capacity(40 << 20);
    let mut x: u64 = 0x2545_F491_4F6C_DD1D;
    while random.len() < 40 << 20 {
        x ^= x << 13;
        x ^= x >> 7;
        x ^= x << 17;
        random.extend_from_slice(&x.to_le_bytes());
    }
    fs::write(dir.path().join("random.bin"), &random).unwrap();
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg("tar -cf - -C \"$0\" random.bin | gzip -1")
        .arg(dir.path())
        .output()
        .unwrap();
    assert!(out.status.success());
    archive::check_within(out.stdout.as_slice(), &archive::Limits::default()).unwrap();
}

mod properties {
    use proptest::prelude::*;

    proptest! {
        #![proptest_config(ProptestConfig::with_cases(64))]
        /// Arbitrary bytes, and gzip streams of arbitrary bytes, are an
        /// answer from the archive guard, never a panic or a hang.
        #[test]
        fn the_guard_answers_any_input(bytes in proptest::collection::vec(any::<u8>(), 0..2048)) {
            let _ = rouse_store::archive::check(&bytes[..]);
            let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
            std::io::Write::write_all(&mut gz, &bytes).unwrap();
            let packed = gz.finish().unwrap();
            let _ = rouse_store::archive::check(&packed[..]);
        }
    }
}
