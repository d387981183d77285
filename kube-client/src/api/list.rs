//! Listing every page.
//!
//! [`Api::list_stream`] follows `continue` tokens page by page and yields
//! objects as pages arrive, so a caller never needs the whole list in memory.
//! If the continue token expires while paging (410 Gone: etcd compacted the
//! version the pages were served from), it does what client-go's pager does
//! with `FullListIfExpired`: lists everything again without paging — and
//! yields only the objects it had not yielded yet, so no object comes twice.

use std::collections::{HashSet, VecDeque};
use std::fmt::Debug;

use futures::Stream;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::Api;
use crate::error::Result;
use crate::params::ListParams;
use crate::resource::{Resource, ResourceExt};

impl<K> Api<K>
where
    K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + 'static,
{
    /// Every object matching `lp`, page by page (`lp.limit` is the page size;
    /// unset means 500).
    pub fn list_stream(&self, lp: &ListParams) -> impl Stream<Item = Result<K>> + Send + use<K> {
        let mut lp = lp.clone();
        lp.limit.get_or_insert(500);
        let state = Pager {
            api: self.clone(),
            lp,
            page: VecDeque::new(),
            more: true,
            yielded: HashSet::new(),
            fell_back: false,
        };
        futures::stream::unfold(state, |mut st| async move {
            loop {
                if let Some(obj) = st.page.pop_front() {
                    if st.fell_back && st.yielded.contains(&key(&obj)) {
                        continue;
                    }
                    if !st.fell_back {
                        st.yielded.insert(key(&obj));
                    }
                    return Some((Ok(obj), st));
                }
                if !st.more {
                    return None;
                }
                match st.api.list(&st.lp).await {
                    Ok(list) => {
                        st.lp.continue_token = list.metadata.continue_.filter(|c| !c.is_empty());
                        st.more = st.lp.continue_token.is_some();
                        st.page = list.items.into();
                    }
                    Err(e) if e.is_gone() && st.lp.continue_token.is_some() && !st.fell_back => {
                        tracing::debug!(
                            "continue token expired while paging; listing everything at once"
                        );
                        st.fell_back = true;
                        st.lp.continue_token = None;
                        st.lp.limit = None;
                        st.lp.resource_version = None;
                    }
                    Err(e) => {
                        st.more = false;
                        return Some((Err(e), st));
                    }
                }
            }
        })
    }
}

struct Pager<K> {
    api: Api<K>,
    lp: ListParams,
    page: VecDeque<K>,
    more: bool,
    /// namespace/name of what was yielded, for the 410 fallback.
    yielded: HashSet<String>,
    fell_back: bool,
}

fn key<K: Resource>(obj: &K) -> String {
    format!("{}/{}", obj.namespace().unwrap_or_default(), obj.name_any())
}
