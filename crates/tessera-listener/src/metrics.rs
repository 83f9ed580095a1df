use std::time::Duration;

use metrics_exporter_prometheus::{BuildError, Matcher, PrometheusBuilder, PrometheusHandle};

/// How often histogram samples are folded into their buckets. Between two
/// upkeeps the recorder keeps every sample: at tens of thousands of requests a
/// second an unscraped histogram grew a process by 160 MB in a minute.
const UPKEEP: Duration = Duration::from_secs(5);

/// Installs the process's metrics recorder, with the given buckets for each
/// named histogram, and the task that folds samples into them every few seconds
/// whether or not anyone scrapes `/metrics`. Call once per process, within the
/// Tokio runtime.
pub fn install_metrics(histograms: &[(&str, &[f64])]) -> Result<PrometheusHandle, BuildError> {
    let mut builder = PrometheusBuilder::new();
    for (name, buckets) in histograms {
        builder = builder.set_buckets_for_metric(Matcher::Full((*name).into()), buckets)?;
    }
    let handle = builder.install_recorder()?;
    let upkeep = handle.clone();
    tokio::spawn(async move {
        let mut tick = tokio::time::interval(UPKEEP);
        loop {
            tick.tick().await;
            upkeep.run_upkeep();
        }
    });
    Ok(handle)
}
