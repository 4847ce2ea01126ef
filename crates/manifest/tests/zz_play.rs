#[test]
fn play() {
    let p = std::env::var("PLAY").unwrap();
    match rouse_manifest::load_file(p.as_ref(), &Default::default()) {
        Ok(l) => { println!("{}", serde_json::to_string_pretty(&l.spec).unwrap()); for w in l.warnings { println!("W {w}"); } }
        Err(e) => println!("E {e}"),
    }
}
