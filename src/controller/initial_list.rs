//! How every watch reads the cluster's state when it starts (and after it falls too far
//! behind): a streaming list, where the API server sends each object from its watch cache as
//! one watch event and marks the end with a bookmark (`sendInitialEvents`, the WatchList
//! feature: beta and on by default since Kubernetes 1.32), or pages of a LIST.
//!
//! Streaming is chosen when the API server answers a probe correctly: each object is decoded
//! on its own instead of a page at a time, and there is no round trip per page, so a cold start
//! at 100,000 workloads takes about as long as a plain LIST (bench/RESULTS.md, section 9).
//! Paged lists work everywhere and are the fallback.

use std::collections::BTreeMap;

use futures::TryStreamExt as _;
use k8s_openapi::api::core::v1::Namespace;
use kube::api::{WatchEvent, WatchParams};
use kube::runtime::watcher;
use kube::{Api, Client};

use crate::kubeapi::ApiCalls;

/// Objects per page of a paged initial LIST (kube's default is 500). A page is decoded into
/// typed objects all at once before they are slimmed one by one, so the page size sets the
/// transient heap of a sync: 500 Deployments decoded are several MiB per watch, freed between
/// the small records kept, and glibc cannot hand back pages that a kept record shares.
pub const LIST_PAGE: u32 = 100;

/// The annotation of the bookmark that ends a streaming list's initial events.
const INITIAL_EVENTS_END: &str = "k8s.io/initial-events-end";

/// How long the probe's watch may stay open on the API server (it ends much sooner).
const PROBE_WATCH_SECONDS: u32 = 10;

/// How a watch reads its initial state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum InitialList {
    /// A watch with `sendInitialEvents=true`, ended by the initial-events-end bookmark.
    Stream,
    /// A LIST in pages of [`LIST_PAGE`], then a watch from its resourceVersion.
    Pages,
}

impl InitialList {
    /// The watcher configuration for this choice (selectors are added by the caller).
    pub fn config(self) -> watcher::Config {
        let config = watcher::Config::default();
        match self {
            InitialList::Stream => config.streaming_lists(),
            InitialList::Pages => config.page_size(LIST_PAGE),
        }
    }

    /// How logs and docs name it.
    pub fn name(self) -> &'static str {
        match self {
            InitialList::Stream => "stream",
            InitialList::Pages => "pages",
        }
    }
}

/// What a probe's events say about streaming lists: the verdict is on the end bookmark.
#[derive(Debug, Default)]
struct ProbeSeen {
    objects: usize,
    end: bool,
    refused: Option<String>,
}

impl ProbeSeen {
    /// Takes one event; true once nothing more is needed.
    fn take(&mut self, event: &WatchEvent<Namespace>) -> bool {
        match event {
            WatchEvent::Added(_) | WatchEvent::Modified(_) | WatchEvent::Deleted(_) => {
                self.objects += 1;
                false
            }
            WatchEvent::Bookmark(b) => {
                self.end = ends_initial_events(&b.metadata.annotations);
                self.end
            }
            WatchEvent::Error(e) => {
                self.refused = Some(format!("{} ({})", e.message, e.code));
                true
            }
        }
    }

    /// `Ok` when streaming lists work, else why not, as a sentence's end.
    fn verdict(self) -> Result<(), String> {
        match (self.end, self.refused) {
            (true, _) => Ok(()),
            (false, Some(refused)) => Err(format!("the API server refused it: {refused}")),
            (false, None) => Err(format!(
                "the API server sent {} initial object(s) but never the bookmark that ends them \
                 (an API server without the WatchList feature)",
                self.objects
            )),
        }
    }
}

fn ends_initial_events(annotations: &BTreeMap<String, String>) -> bool {
    annotations.get(INITIAL_EVENTS_END).map(String::as_str) == Some("true")
}

/// Chooses how watches list: `wanted` when given, else [`InitialList::Stream`] if a probe
/// (a streaming list of the `default` Namespace alone, bounded by `calls`' timeout) ends with
/// the initial-events-end bookmark, else [`InitialList::Pages`]. The choice is logged with
/// its reason.
pub async fn choose(wanted: Option<InitialList>, client: &Client, calls: &ApiCalls) -> InitialList {
    if let Some(choice) = wanted {
        tracing::info!(initial_list = choice.name(), "initial lists as configured");
        return choice;
    }
    match probe(client, calls).await {
        Ok(()) => {
            tracing::info!(
                initial_list = InitialList::Stream.name(),
                "watches read their initial state with streaming lists: the API server supports them"
            );
            InitialList::Stream
        }
        Err(reason) => {
            tracing::warn!(
                initial_list = InitialList::Pages.name(),
                reason = %reason,
                "watches read their initial state in paged lists: a streaming list could not be \
                 used (see reason); paged lists work everywhere but cost a round trip per \
                 {LIST_PAGE} objects. Set --initial-list pages to skip this probe"
            );
            InitialList::Pages
        }
    }
}

/// One streaming list of the `default` Namespace: `Ok` when it ends with the bookmark.
async fn probe(client: &Client, calls: &ApiCalls) -> Result<(), String> {
    let api: Api<Namespace> = Api::all(client.clone());
    let params = WatchParams::streaming_lists()
        .fields("metadata.name=default")
        .timeout(PROBE_WATCH_SECONDS);
    let seen = calls
        .once("probe_streaming_list", async {
            let mut stream = std::pin::pin!(api.watch(&params, "0").await?);
            let mut seen = ProbeSeen::default();
            while let Some(event) = stream.try_next().await? {
                if seen.take(&event) {
                    break;
                }
            }
            Ok(seen)
        })
        .await
        .map_err(|e| e.to_string())?;
    seen.verdict()
}

#[cfg(test)]
mod tests {
    use super::*;
    use kube::core::watch::{Bookmark, BookmarkMeta};
    use kube::core::{Status, TypeMeta};

    fn bookmark(end: bool) -> WatchEvent<Namespace> {
        let annotations = if end {
            [(INITIAL_EVENTS_END.to_owned(), "true".to_owned())].into()
        } else {
            BTreeMap::new()
        };
        WatchEvent::Bookmark(Bookmark {
            types: TypeMeta::default(),
            metadata: BookmarkMeta {
                resource_version: "7".into(),
                annotations,
            },
        })
    }

    fn run(events: Vec<WatchEvent<Namespace>>) -> Result<(), String> {
        let mut seen = ProbeSeen::default();
        for e in &events {
            if seen.take(e) {
                break;
            }
        }
        seen.verdict()
    }

    #[test]
    fn the_end_bookmark_means_streaming_works() {
        let added = WatchEvent::Added(Namespace::default());
        assert_eq!(run(vec![added, bookmark(true)]), Ok(()));
    }

    #[test]
    fn objects_without_the_end_bookmark_mean_an_old_server() {
        // An API server that ignores sendInitialEvents sends the objects (resourceVersion 0)
        // and plain bookmarks, never the end: a streaming watcher would wait for ever.
        let added = WatchEvent::Added(Namespace::default());
        let err = run(vec![added, bookmark(false)]).unwrap_err();
        assert!(
            err.contains("sent 1 initial object(s) but never the bookmark"),
            "{err}"
        );
    }

    #[test]
    fn an_error_event_is_a_refusal_with_its_message() {
        let refused = WatchEvent::Error(
            Status::failure(
                "sendInitialEvents is forbidden for watch unless the WatchList feature gate is \
                 enabled",
                "Invalid",
            )
            .with_code(422)
            .boxed(),
        );
        let err = run(vec![refused]).unwrap_err();
        assert!(
            err.starts_with("the API server refused it: sendInitialEvents is forbidden"),
            "{err}"
        );
        assert!(err.ends_with("(422)"), "{err}");
    }

    #[test]
    fn each_choice_configures_the_watcher() {
        use kube::runtime::watcher::InitialListStrategy;
        let stream = InitialList::Stream.config();
        assert_eq!(
            stream.initial_list_strategy,
            InitialListStrategy::StreamingList
        );
        let pages = InitialList::Pages.config();
        assert_eq!(pages.initial_list_strategy, InitialListStrategy::ListWatch);
        assert_eq!(pages.page_size, Some(LIST_PAGE));
    }
}
