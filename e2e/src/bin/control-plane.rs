//! Starts a control plane by hand for experiments: `cargo run -p e2e --bin control-plane`.
//! Prints the kubeconfig and runs until Ctrl-C or SIGTERM, then stops everything.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let started = std::time::Instant::now();
    let cp = e2e::ControlPlane::start().await?;
    let kubeconfig = cp.kubeconfig().display();
    println!(
        "control plane ready in {:.1}s at {}",
        started.elapsed().as_secs_f64(),
        cp.apiserver_url().unwrap_or("?")
    );
    if let Some(dir) = cp.dir() {
        println!("working directory (logs, certificates): {}", dir.display());
    }
    println!("kubeconfig: {kubeconfig}");
    println!("export KUBECONFIG={kubeconfig}");
    println!("Ctrl-C to stop.");
    e2e::until_signalled().await?;
    println!("stopping");
    drop(cp);
    Ok(())
}
