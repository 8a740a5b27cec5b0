//! The job model's tests: normalization and validation of specs as users write them.

use super::*;
use crate::spec::parse_job_spec;

fn valid_spec() -> Job {
    parse_job_spec(
        "Type: batch\nTasks:\n  - Name: main\n    Engine: {Type: docker, Params: {Image: busybox}}\n",
    )
    .unwrap()
}

fn fields(job: &Job) -> Vec<String> {
    job.validate()
        .err()
        .unwrap_or_default()
        .into_iter()
        .map(|e| e.to_string())
        .collect()
}

#[test]
fn a_minimal_spec_is_valid_and_gets_upstream_defaults() {
    let mut job = valid_spec();
    job.id = JobId::generate();
    job.normalize(&JobDefaults::default());
    assert!(job.validate().is_ok(), "{:?}", job.validate());
    assert_eq!(job.namespace, "default");
    assert_eq!(job.name, job.id.to_string());
    assert_eq!(job.count, 1);
    assert_eq!(job.tasks[0].resources.cpu, "500m");
    assert_eq!(job.tasks[0].resources.memory, "512Mb");
}

#[test]
fn unknown_engine_is_named_with_its_field() {
    let mut job = valid_spec();
    job.tasks[0].engine.r#type = "flibble".into();
    let errors = fields(&job);
    assert_eq!(errors.len(), 1);
    assert!(
        errors[0].starts_with("Tasks[0].Engine.Type: unknown engine \"flibble\""),
        "{errors:?}"
    );
}

#[test]
fn negative_count_missing_tasks_and_bad_type_are_rejected() {
    let mut job = valid_spec();
    job.count = -1;
    job.tasks.clear();
    job.r#type = "cron".into();
    let errors = fields(&job).join("\n");
    assert!(errors.contains("Count: job count must be >= 0"), "{errors}");
    assert!(errors.contains("Tasks: missing job tasks"), "{errors}");
    assert!(errors.contains("Type: invalid job type"), "{errors}");
}

#[test]
fn daemon_jobs_refuse_count_above_one() {
    let mut job = valid_spec();
    job.r#type = "daemon".into();
    job.count = 3;
    let errors = fields(&job).join("\n");
    assert!(errors.contains("cannot specify count > 1"), "{errors}");
}

#[test]
fn bad_resources_and_labels_are_rejected() {
    let mut job = valid_spec();
    job.tasks[0].resources.memory = "1zb".into();
    job.labels.insert("bad key!".into(), "v".into());
    let errors = fields(&job).join("\n");
    assert!(
        errors.contains("Tasks[0].Resources: invalid memory"),
        "{errors}"
    );
    assert!(errors.contains("invalid label key"), "{errors}");
}

#[test]
fn result_paths_need_a_publisher() {
    let mut job = valid_spec();
    job.tasks[0].result_paths.push(crate::task::ResultPath {
        name: "out".into(),
        path: "/out".into(),
    });
    assert!(fields(&job).join("\n").contains("publisher must be set"));
}

#[test]
fn sanitize_drops_server_owned_fields_with_warnings() {
    let mut job = valid_spec();
    job.version = 4;
    job.meta.insert("bacalhau.org/x".into(), "1".into());
    let warnings = job.sanitize_submission();
    assert_eq!(job.version, 0);
    assert!(job.meta.is_empty());
    assert_eq!(warnings.len(), 2, "{warnings:?}");
}

#[test]
fn daemon_count_is_normalized_to_zero() {
    let mut job = valid_spec();
    job.r#type = "daemon".into();
    job.count = 1;
    job.normalize(&JobDefaults::default());
    assert_eq!(job.count, 0);
}

#[test]
fn a_count_beyond_the_cap_is_refused_by_name() {
    let mut job = crate::parse_job_spec(
        "Type: batch\nCount: 1000000000000\nTasks:\n - Name: main\n   Engine: {Type: noop}\n",
    )
    .unwrap();
    job.normalize(&Default::default());
    let errors = job.validate().unwrap_err();
    assert!(
        errors.iter().any(|e| e
            .to_string()
            .contains("Count: job count must be at most 100000")),
        "{errors:?}"
    );
}
