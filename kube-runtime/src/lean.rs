//! Lean stored objects: what a store keeps of each object it is given.
//!
//! A cache holds every object of its kind for as long as it runs, so each
//! byte an object holds is paid once per object. Before an object is stored
//! (see [`crate::store`]) the store's writer:
//!
//! 1. drops `metadata.managedFields`, unless the cache keeps them;
//! 2. returns the spare capacity decoding left in its lists.
//!
//! The second step exists because of how serde decodes a JSON array into a
//! `Vec`: it cannot know the length in advance, starts empty and doubles, so
//! a list of 1 to 4 small items ends with room for 4, one of 5 with room for
//! 8. For most kinds that is noise, but a Pod's lists hold large structs — a
//! `ContainerStatus` is 752 bytes, a `PodCondition` 160 — and the spare room
//! measured a quarter of what a stored Pod holds (see the `heap` subcommand
//! of the benchmark driver, `bench/README.md`). Strings and maps decode
//! without spare room; only lists are shrunk, and only where they have
//! spare room (a list already full costs nothing).
//!
//! Which lists: the metadata's of every kind, and for the kinds that carry
//! a Pod spec — `Pod`, `PodTemplate`, `Deployment`, `ReplicaSet`,
//! `StatefulSet`, `DaemonSet`, `Job`, `CronJob` — the spec's (containers,
//! volumes, tolerations, …) and a Pod's status lists. Other kinds keep what
//! decoding made. The object's content never changes: only capacity.

use std::any::Any;

use k8s_openapi::api::apps::v1::{DaemonSet, Deployment, ReplicaSet, StatefulSet};
use k8s_openapi::api::batch::v1::{CronJob, Job, JobSpec};
use k8s_openapi::api::core::v1::{
    Container, ContainerStatus, EphemeralContainer, Pod, PodSpec, PodStatus, PodTemplate,
    PodTemplateSpec,
};
use k8s_openapi::apimachinery::pkg::apis::meta::v1::ObjectMeta;
use kube_client::Resource;

/// Makes `obj` what a store keeps of it: without `managedFields` unless
/// `keep_managed_fields`, its lists' spare capacity returned (see the
/// module docs). Stores call it on every object they are given; it is
/// public for code that holds objects of its own the same way.
pub fn lean<K: Resource + 'static>(obj: &mut K, keep_managed_fields: bool) {
    if !keep_managed_fields {
        obj.meta_mut().managed_fields = None;
    }
    shrink_meta(obj.meta_mut());
    shrink_kind(obj as &mut dyn Any);
}

fn shrink<T>(list: &mut Option<Vec<T>>) {
    if let Some(list) = list {
        list.shrink_to_fit();
    }
}

fn shrink_meta(meta: &mut ObjectMeta) {
    shrink(&mut meta.owner_references);
    shrink(&mut meta.finalizers);
    shrink(&mut meta.managed_fields);
}

/// The kinds known to carry lists worth shrinking.
fn shrink_kind(obj: &mut dyn Any) {
    if let Some(pod) = obj.downcast_mut::<Pod>() {
        if let Some(x) = pod.spec.as_mut() {
            shrink_pod_spec(x);
        }
        if let Some(x) = pod.status.as_mut() {
            shrink_pod_status(x);
        }
    } else if let Some(t) = obj.downcast_mut::<PodTemplate>() {
        if let Some(x) = t.template.as_mut() {
            shrink_template(x);
        }
    } else if let Some(d) = obj.downcast_mut::<Deployment>() {
        shrink_template(&mut d.spec.template);
    } else if let Some(r) = obj.downcast_mut::<ReplicaSet>() {
        if let Some(t) = r.spec.template.as_mut() {
            shrink_template(t);
        }
    } else if let Some(s) = obj.downcast_mut::<StatefulSet>() {
        shrink_template(&mut s.spec.template);
    } else if let Some(d) = obj.downcast_mut::<DaemonSet>() {
        shrink_template(&mut d.spec.template);
    } else if let Some(j) = obj.downcast_mut::<Job>() {
        if let Some(x) = j.spec.as_mut() {
            shrink_job_spec(x);
        }
    } else if let Some(c) = obj.downcast_mut::<CronJob>()
        && let Some(s) = c.spec.job_template.spec.as_mut()
    {
        shrink_job_spec(s);
    }
}

fn shrink_job_spec(spec: &mut JobSpec) {
    shrink_template(&mut spec.template);
}

fn shrink_template(template: &mut PodTemplateSpec) {
    if let Some(meta) = template.metadata.as_mut() {
        shrink_meta(meta);
    }
    if let Some(x) = template.spec.as_mut() {
        shrink_pod_spec(x);
    }
}

fn shrink_pod_spec(spec: &mut PodSpec) {
    spec.containers.shrink_to_fit();
    spec.containers.iter_mut().for_each(shrink_container);
    shrink(&mut spec.init_containers);
    spec.init_containers
        .iter_mut()
        .flatten()
        .for_each(shrink_container);
    shrink(&mut spec.ephemeral_containers);
    spec.ephemeral_containers
        .iter_mut()
        .flatten()
        .for_each(shrink_ephemeral_container);
    shrink(&mut spec.volumes);
    for volume in spec.volumes.iter_mut().flatten() {
        if let Some(projected) = volume.projected.as_mut() {
            shrink(&mut projected.sources);
            for source in projected.sources.iter_mut().flatten() {
                if let Some(c) = source.config_map.as_mut() {
                    shrink(&mut c.items);
                }
                if let Some(d) = source.downward_api.as_mut() {
                    shrink(&mut d.items);
                }
            }
        }
    }
    shrink(&mut spec.tolerations);
    shrink(&mut spec.image_pull_secrets);
    shrink(&mut spec.host_aliases);
    shrink(&mut spec.readiness_gates);
    shrink(&mut spec.resource_claims);
    shrink(&mut spec.scheduling_gates);
    shrink(&mut spec.topology_spread_constraints);
    shrink(&mut spec.eviction_responders);
}

fn shrink_container(c: &mut Container) {
    shrink(&mut c.args);
    shrink(&mut c.command);
    shrink(&mut c.env);
    shrink(&mut c.env_from);
    shrink(&mut c.ports);
    shrink(&mut c.resize_policy);
    shrink(&mut c.restart_policy_rules);
    shrink(&mut c.volume_devices);
    shrink(&mut c.volume_mounts);
}

fn shrink_ephemeral_container(c: &mut EphemeralContainer) {
    shrink(&mut c.args);
    shrink(&mut c.command);
    shrink(&mut c.env);
    shrink(&mut c.env_from);
    shrink(&mut c.ports);
    shrink(&mut c.resize_policy);
    shrink(&mut c.restart_policy_rules);
    shrink(&mut c.volume_devices);
    shrink(&mut c.volume_mounts);
}

fn shrink_pod_status(status: &mut PodStatus) {
    shrink(&mut status.conditions);
    for statuses in [
        &mut status.container_statuses,
        &mut status.init_container_statuses,
        &mut status.ephemeral_container_statuses,
    ] {
        shrink(statuses);
        statuses
            .iter_mut()
            .flatten()
            .for_each(shrink_container_status);
    }
    shrink(&mut status.host_ips);
    shrink(&mut status.pod_ips);
    shrink(&mut status.resource_claim_statuses);
    shrink(&mut status.volume_health);
    shrink(&mut status.node_allocatable_resource_claim_statuses);
}

fn shrink_container_status(s: &mut ContainerStatus) {
    shrink(&mut s.allocated_resources_status);
    shrink(&mut s.volume_mounts);
}

#[cfg(test)]
mod tests {
    use super::*;
    use k8s_openapi::api::core::v1::{ConfigMap, EnvVar, PodCondition};
    use k8s_openapi::apimachinery::pkg::apis::meta::v1::ManagedFieldsEntry;

    /// A Pod as decoding leaves it: lists with spare room.
    fn roomy_pod() -> Pod {
        let mut env = Vec::with_capacity(4);
        env.push(EnvVar {
            name: "A".into(),
            ..EnvVar::default()
        });
        let mut containers = Vec::with_capacity(3);
        containers.push(Container {
            name: "c".into(),
            env: Some(env),
            ..Container::default()
        });
        let mut conditions = Vec::with_capacity(8);
        conditions.extend((0..5).map(|i| PodCondition {
            type_: format!("T{i}"),
            ..PodCondition::default()
        }));
        let mut statuses = Vec::with_capacity(4);
        statuses.push(ContainerStatus {
            name: "c".into(),
            ..ContainerStatus::default()
        });
        Pod {
            metadata: ObjectMeta {
                name: Some("p".into()),
                managed_fields: Some(vec![ManagedFieldsEntry::default()]),
                ..ObjectMeta::default()
            },
            spec: Some(PodSpec {
                containers,
                ..PodSpec::default()
            }),
            status: Some(PodStatus {
                conditions: Some(conditions),
                container_statuses: Some(statuses),
                ..PodStatus::default()
            }),
        }
    }

    #[test]
    fn a_pods_lists_lose_their_spare_room_and_nothing_else() {
        let mut pod = roomy_pod();
        let before = pod.clone();
        lean(&mut pod, true);
        assert_eq!(pod, before, "the content is unchanged");
        let spec = pod.spec.as_ref().unwrap();
        assert_eq!(spec.containers.capacity(), 1);
        assert_eq!(spec.containers[0].env.as_ref().unwrap().capacity(), 1);
        let status = pod.status.as_ref().unwrap();
        assert_eq!(status.conditions.as_ref().unwrap().capacity(), 5);
        assert_eq!(status.container_statuses.as_ref().unwrap().capacity(), 1);

        lean(&mut pod, false);
        assert!(pod.metadata.managed_fields.is_none());
        assert_eq!(pod.spec, before.spec);
    }

    #[test]
    fn a_deployments_template_is_shrunk_too() {
        let mut deployment = Deployment {
            spec: k8s_openapi::api::apps::v1::DeploymentSpec {
                template: PodTemplateSpec {
                    metadata: None,
                    spec: roomy_pod().spec,
                },
                ..Default::default()
            },
            ..Deployment::default()
        };
        lean(&mut deployment, false);
        let spec = deployment.spec.template.spec.unwrap();
        assert_eq!(spec.containers.capacity(), 1);
    }

    #[test]
    fn other_kinds_lose_only_managed_fields() {
        let mut cm = ConfigMap {
            metadata: ObjectMeta {
                managed_fields: Some(vec![ManagedFieldsEntry::default()]),
                ..ObjectMeta::default()
            },
            data: Some([("k".to_string(), "v".to_string())].into()),
            ..ConfigMap::default()
        };
        lean(&mut cm, false);
        assert!(cm.metadata.managed_fields.is_none());
        assert_eq!(cm.data.unwrap()["k"], "v");
    }
}
