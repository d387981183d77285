//! The registry that makes informers shared: one per identity, handed out
//! to everyone who asks for it while any of them still holds it.

use std::any::{Any, TypeId};
use std::collections::HashMap;
use std::fmt::Debug;
use std::sync::{Arc, Weak};

use kube_client::{Api, Resource};
use parking_lot::Mutex;
use serde::Serialize;
use serde::de::DeserializeOwned;

use super::{Informer, InformerConfig, Shared};

/// What makes two informers the same: the Rust type, the kind's group,
/// version and plural, the namespace (`None` for all), both selectors, the
/// transform's name, whether `managedFields` are kept, and whether the
/// store is compact.
#[derive(Debug, Clone, PartialEq, Eq, Hash)]
pub struct InformerKey {
    type_id: TypeId,
    type_name: &'static str,
    /// API group (empty for core).
    pub group: String,
    /// API version.
    pub version: String,
    /// Plural resource name.
    pub plural: String,
    /// Namespace watched, or `None` for all namespaces / cluster-scoped.
    pub namespace: Option<String>,
    /// Label selector, as sent.
    pub label_selector: Option<String>,
    /// Field selector, as sent.
    pub field_selector: Option<String>,
    /// The transform's name.
    pub transform: Option<String>,
    /// Whether stored objects keep `metadata.managedFields`.
    pub keep_managed_fields: bool,
    /// Whether the store holds its objects encoded.
    pub compact: bool,
}

impl InformerKey {
    /// A key naming no resource (for informers fed by hand in unit tests).
    #[cfg(test)]
    pub(crate) fn unnamed<K: 'static>() -> Self {
        Self {
            type_id: TypeId::of::<K>(),
            type_name: std::any::type_name::<K>(),
            group: String::new(),
            version: String::new(),
            plural: String::new(),
            namespace: None,
            label_selector: None,
            field_selector: None,
            transform: None,
            keep_managed_fields: false,
            compact: false,
        }
    }

    /// The key of an informer over `api` with `config`.
    pub fn of<K: 'static>(api: &Api<K>, config: &InformerConfig<K>) -> Self {
        let resource = api.resource();
        let selector = |s: &Option<kube_client::params::Selector>| {
            s.as_ref().filter(|s| !s.is_empty()).map(|s| s.to_string())
        };
        Self {
            type_id: TypeId::of::<K>(),
            type_name: std::any::type_name::<K>(),
            group: resource.group.clone(),
            version: resource.version.clone(),
            plural: resource.plural.clone(),
            namespace: api.namespace().map(str::to_string),
            label_selector: selector(&config.watcher.label_selector),
            field_selector: selector(&config.watcher.field_selector),
            transform: config.transform.as_ref().map(|t| t.name().to_string()),
            keep_managed_fields: config.keep_managed_fields,
            compact: config.compact,
        }
    }
}

type Entry = Weak<dyn Any + Send + Sync>;

/// A registry of shared informers (client-go's `SharedInformerFactory`);
/// cheap to clone, every clone is the same registry. See the
/// [module docs](crate::informer).
#[derive(Clone, Default)]
pub struct SharedInformers {
    entries: Arc<Mutex<HashMap<InformerKey, Entry>>>,
}

impl Debug for SharedInformers {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("SharedInformers")
            .field("running", &self.running())
            .finish()
    }
}

impl SharedInformers {
    /// An empty registry.
    pub fn new() -> Self {
        Self::default()
    }

    /// The informer for `api` and `config`'s selectors and transform: the
    /// running one if there is one, else a new one, started at once.
    ///
    /// # Panics
    ///
    /// When it has to start one outside a tokio runtime, with a message
    /// saying how to call it.
    pub fn informer<K>(&self, api: Api<K>, config: InformerConfig<K>) -> Informer<K>
    where
        K: Resource + Clone + DeserializeOwned + Serialize + Debug + Send + Sync + 'static,
    {
        let key = InformerKey::of(&api, &config);
        let mut entries = self.entries.lock();
        entries.retain(|_, entry| entry.strong_count() > 0);
        if let Some(shared) = entries
            .get(&key)
            .and_then(Weak::upgrade)
            .and_then(|any| any.downcast::<Shared<K>>().ok())
        {
            return Informer::from_shared(shared);
        }
        let informer = Informer::start(key.clone(), api, config);
        let any: Arc<dyn Any + Send + Sync> = informer.shared().clone();
        entries.insert(key, Arc::downgrade(&any));
        informer
    }

    /// How many informers are running (held by someone).
    pub fn running(&self) -> usize {
        self.entries
            .lock()
            .values()
            .filter(|e| e.strong_count() > 0)
            .count()
    }
}
