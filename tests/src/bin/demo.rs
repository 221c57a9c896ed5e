//! `bash scripts/demo`: the local end-to-end demo (see README).

#[tokio::main(flavor = "current_thread")]
async fn main() {
    let mut stdout = std::io::stdout();
    let steps = pushdeploy_tests::demo::run_demo(&mut stdout).await;
    let failed = steps
        .iter()
        .filter(|s| s.answer.get("error").is_some() && !s.step.starts_with("forged"))
        .count();
    if failed > 0 {
        eprintln!("{failed} step(s) failed; see the timeline above");
        std::process::exit(1);
    }
}
