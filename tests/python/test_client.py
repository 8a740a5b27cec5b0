"""Wire-compatibility tests: upstream's published Python client against our server.

Uses only `bacalhau-apiclient==1.4.1` from PyPI (swagger-codegen generated), unchanged.
The server address comes from the environment:

    BACALHAU_API_HOST  (default 127.0.0.1)
    BACALHAU_API_PORT  (required)

Setup (see tests/python/requirements.txt):

    python3 -m venv .venv
    .venv/bin/pip install -r tests/python/requirements.txt
    BACALHAU_API_PORT=1234 .venv/bin/pytest tests/python

No compute node is needed: jobs carry a QueueTimeout, so they sit in Queued instead of failing.
Every test submits its own job, so tests are independent of each other and of order.
"""

import os
import re
import time
import uuid

import pytest

import bacalhau_apiclient
from bacalhau_apiclient import models
from bacalhau_apiclient.rest import ApiException

# RFC 3339 timestamp as Go's time.Time marshals it (up to nanosecond fraction, Z or offset).
RFC3339 = re.compile(
    r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}(\.\d{1,9})?(Z|[+-]\d{2}:\d{2})$"
)
# Any time after 2001-09-09 expressed in Unix nanoseconds is above this.
MIN_UNIX_NANOS = 10**18

STOP_WAIT_SECONDS = 15.0


# --------------------------------------------------------------------------- fixtures


@pytest.fixture(scope="session")
def api():
    """An OrchestratorApi bound to the server named by BACALHAU_API_HOST/PORT."""
    port = os.environ.get("BACALHAU_API_PORT")
    if not port:
        pytest.fail(
            "BACALHAU_API_PORT is not set: export BACALHAU_API_PORT (and optionally "
            "BACALHAU_API_HOST, default 127.0.0.1) to point these tests at a running server",
            pytrace=False,
        )
    host = os.environ.get("BACALHAU_API_HOST", "127.0.0.1")
    return bacalhau_apiclient.OrchestratorApi(make_client(host, port, os.environ.get("BACALHAU_API_KEY")))


def make_client(host, port, api_key):
    config = bacalhau_apiclient.Configuration()
    # No trailing slash: the client builds URLs as host + "/api/v1/...".
    config.host = "http://{}:{}".format(host, port)
    if api_key:
        # The generated client has no auth settings of its own; a default header is how its
        # users send an API key.
        return bacalhau_apiclient.ApiClient(
            config, header_name="Authorization", header_value="Bearer " + api_key
        )
    return bacalhau_apiclient.ApiClient(config)


@pytest.fixture
def job_name():
    return "pyclient-" + uuid.uuid4().hex[:12]


@pytest.fixture
def submitted(api, job_name):
    """Submit a fresh queued batch job; yield (job_id, name, put_response); stop it afterwards."""
    response = api.orchestratorput_job(make_put_request(job_name))
    assert isinstance(response, models.ApiPutJobResponse)
    assert isinstance(response.job_id, str) and response.job_id, response
    yield response.job_id, job_name, response
    try:
        api.orchestratorstop_job(response.job_id, reason="test cleanup")
    except ApiException:
        pass  # already stopped / terminal: fine


# --------------------------------------------------------------------------- helpers


def make_job(name, engine_type="docker"):
    task = models.Task(
        name="main",
        engine=models.SpecConfig(
            type=engine_type,
            params={
                "Image": "busybox:1.37.0",
                "Entrypoint": ["echo"],
                "Parameters": ["hello"],
            },
        ),
        timeouts=models.TimeoutConfig(queue_timeout=600),
    )
    return models.Job(name=name, type="batch", count=1, tasks=[task])


def make_put_request(name, engine_type="docker"):
    return models.ApiPutJobRequest(job=make_job(name, engine_type))


def get_job(api, job_id, **kwargs):
    response = api.orchestratorget_job(job_id, **kwargs)
    assert isinstance(response, models.ApiGetJobResponse)
    assert isinstance(response.job, models.Job), response
    return response


def state_type(job):
    assert job.state is not None, "Job.State missing"
    return job.state.state_type


def wait_for_state(api, job_id, wanted, timeout=STOP_WAIT_SECONDS):
    deadline = time.monotonic() + timeout
    seen = None
    while True:
        seen = state_type(get_job(api, job_id).job)
        if seen == wanted:
            return
        if time.monotonic() > deadline:
            pytest.fail("job {} state is {!r}, expected {!r} within {}s".format(
                job_id, seen, wanted, timeout))
        time.sleep(0.2)


def assert_rfc3339(value, what):
    assert isinstance(value, str), "{} should be an RFC 3339 string, got {!r}".format(what, value)
    assert RFC3339.match(value), "{} is not RFC 3339: {!r}".format(what, value)


# --------------------------------------------------------------------------- tests


def test_put_job_returns_ids(submitted):
    job_id, _, response = submitted
    assert job_id.startswith("j-"), job_id
    assert isinstance(response.evaluation_id, str)
    assert response.warnings is None or isinstance(response.warnings, list)


def test_get_job(api, submitted):
    job_id, name, _ = submitted
    job = get_job(api, job_id).job

    assert job.id == job_id
    assert job.name == name
    assert job.type == "batch"
    assert job.count == 1
    assert job.namespace  # defaulted by the server ("default")
    # Upstream sends Job.State.StateType as a string.
    assert state_type(job) in ("Pending", "Queued"), job.state
    # Times are integer Unix nanoseconds.
    assert isinstance(job.create_time, int) and job.create_time > MIN_UNIX_NANOS, job.create_time
    assert isinstance(job.modify_time, int) and job.modify_time >= job.create_time

    assert isinstance(job.tasks, list) and len(job.tasks) == 1
    task = job.tasks[0]
    assert isinstance(task, models.Task)
    assert task.name == "main"
    assert task.engine.type == "docker"
    assert task.engine.params["Image"] == "busybox:1.37.0"
    assert task.engine.params["Entrypoint"] == ["echo"]
    assert task.engine.params["Parameters"] == ["hello"]
    assert task.timeouts.queue_timeout == 600


def test_get_job_include_history_and_executions(api, submitted):
    job_id, _, _ = submitted

    with_history = get_job(api, job_id, include="history")
    assert with_history.job.id == job_id
    assert isinstance(with_history.history, models.ApiListJobHistoryResponse)
    assert with_history.history.items, "include=history returned no history"

    with_executions = get_job(api, job_id, include="executions")
    assert with_executions.job.id == job_id
    assert isinstance(with_executions.executions, models.ApiListJobExecutionsResponse)
    assert isinstance(with_executions.executions.items, list)


def test_list_jobs_contains_submitted_job(api, submitted):
    job_id, name, _ = submitted
    found = None
    next_token = None
    for _ in range(1000):
        kwargs = {"limit": 100}
        if next_token:
            kwargs["next_token"] = next_token
        page = api.orchestratorlist_jobs(**kwargs)
        assert isinstance(page, models.ApiListJobsResponse)
        assert isinstance(page.items, list), page
        for job in page.items:
            assert isinstance(job, models.Job)
            if job.id == job_id:
                found = job
        next_token = page.next_token
        if found is not None or not next_token:
            break
    assert found is not None, "job {} not in list_jobs".format(job_id)
    assert found.name == name
    assert state_type(found) in ("Pending", "Queued"), found.state


def test_job_executions(api, submitted):
    job_id, _, _ = submitted
    # order_by is a required argument of this client method.
    response = api.orchestratorjob_executions(job_id, order_by="created_at")
    assert isinstance(response, models.ApiListJobExecutionsResponse)
    assert isinstance(response.items, list), response
    for execution in response.items:
        assert isinstance(execution, models.Execution)
        assert execution.job_id == job_id
        # Upstream sends execution state types as integers.
        assert isinstance(execution.compute_state.state_type, int), execution.compute_state
        assert isinstance(execution.desired_state.state_type, int), execution.desired_state


def test_job_history(api, submitted):
    job_id, _, _ = submitted
    response = api.orchestratorjob_history(job_id)
    assert isinstance(response, models.ApiListJobHistoryResponse)
    assert isinstance(response.items, list) and response.items, response

    first = response.items[0]
    assert isinstance(first, models.JobHistory)
    assert first.job_id == job_id
    assert first.type == "JobLevel", first.type
    assert_rfc3339(first.time, "JobHistory.Time")
    assert isinstance(first.event, models.Event)
    assert first.event.message == "Job submitted", first.event
    assert_rfc3339(first.event.timestamp, "Event.Timestamp")

    for item in response.items:
        assert item.job_id == job_id
        assert item.type in ("JobLevel", "ExecutionLevel"), item.type
        assert_rfc3339(item.time, "JobHistory.Time")


def test_stop_job(api, submitted):
    job_id, _, _ = submitted
    response = api.orchestratorstop_job(job_id, reason="stopped by python client test")
    assert isinstance(response, models.ApiStopJobResponse)
    assert isinstance(response.evaluation_id, str)
    wait_for_state(api, job_id, "Stopped")


def test_invalid_job_rejected_with_400(api, job_name):
    with pytest.raises(ApiException) as excinfo:
        api.orchestratorput_job(make_put_request(job_name, engine_type="flibble"))
    assert excinfo.value.status == 400, excinfo.value


def test_get_unknown_job_is_404(api):
    with pytest.raises(ApiException) as excinfo:
        api.orchestratorget_job("j-" + str(uuid.uuid4()))
    assert excinfo.value.status == 404, excinfo.value


def test_without_the_api_key_the_server_says_401():
    """Only meaningful when the server has users (BACALHAU_API_KEY set by the harness)."""
    if not os.environ.get("BACALHAU_API_KEY"):
        pytest.skip("the server under test has no API users")
    host = os.environ.get("BACALHAU_API_HOST", "127.0.0.1")
    api = bacalhau_apiclient.OrchestratorApi(
        make_client(host, os.environ["BACALHAU_API_PORT"], None)
    )
    with pytest.raises(ApiException) as refused:
        api.orchestratorlist_jobs()
    assert refused.value.status == 401
    assert b"Request Unauthorized" in refused.value.body
