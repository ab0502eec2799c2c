//! Brings up the real single-node cluster by hand: `sudo cargo run -p e2e --bin cluster`.
//! Prints its KUBECONFIG and runs until Ctrl-C or SIGTERM, then tears everything down (no
//! process, mount, network namespace, iptables rule, cgroup or veth is left).
//! Needs root and the binaries `bash e2e/k8s-binaries.sh` builds.

#[tokio::main]
async fn main() -> anyhow::Result<()> {
    let cluster = e2e::Cluster::start().await?;
    let t = cluster.timings();
    println!(
        "cluster ready: API server in {:.1}s, node {} Ready in {:.1}s",
        t.control_plane.as_secs_f64(),
        e2e::NODE_NAME,
        t.node_ready.as_secs_f64()
    );
    println!(
        "run directory (every component's log, configs, certificates): {}",
        cluster.dir().display()
    );
    println!(
        "export KUBECONFIG={}",
        cluster.plane().kubeconfig().display()
    );
    println!("Ctrl-C to stop.");
    e2e::until_signalled().await?;
    println!("stopping");
    let began = std::time::Instant::now();
    drop(cluster);
    println!("torn down in {:.1}s", began.elapsed().as_secs_f64());
    Ok(())
}
