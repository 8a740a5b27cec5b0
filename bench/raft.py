"""Submit figures for bench/raft.sh: sequential submit latency and concurrent submit rate
against one API, and the failover time of an orchestrator cluster. Standard library only.

  raft.py submit URL SEQUENTIAL CONCURRENT CLIENTS PREFIX
      prints: p50_ms p99_ms jobs_per_s
  raft.py failover URL... (the surviving members' APIs)
      waits until a job submitted to any of them is acknowledged, then until the new leader
      has scheduled it (with no compute node, the plan fails it); prints both times in seconds
"""
import json
import sys
import threading
import time
import urllib.request


def put_job(base, name, timeout=30):
    body = json.dumps({
        "Job": {
            "Name": name,
            "Type": "batch",
            "Tasks": [{"Name": "main", "Engine": {"Type": "noop"}}],
        }
    }).encode()
    request = urllib.request.Request(
        base + "/api/v1/orchestrator/jobs", data=body, method="PUT",
        headers={"Content-Type": "application/json"})
    with urllib.request.urlopen(request, timeout=timeout) as response:
        return json.loads(response.read())["JobID"]


def job_state(base, job_id):
    with urllib.request.urlopen(f"{base}/api/v1/orchestrator/jobs/{job_id}", timeout=5) as response:
        return json.loads(response.read())["Job"]["State"]["StateType"]


def submit(base, sequential, concurrent, clients, prefix):
    latencies = []
    for i in range(sequential):
        start = time.perf_counter()
        put_job(base, f"{prefix}-seq-{i}")
        latencies.append(time.perf_counter() - start)
    latencies.sort()
    p50 = latencies[len(latencies) // 2] * 1000
    p99 = latencies[min(len(latencies) - 1, len(latencies) * 99 // 100)] * 1000
    counter = iter(range(concurrent))
    lock = threading.Lock()

    def worker():
        while True:
            with lock:
                i = next(counter, None)
            if i is None:
                return
            put_job(base, f"{prefix}-conc-{i}")

    threads = [threading.Thread(target=worker) for _ in range(clients)]
    start = time.perf_counter()
    for thread in threads:
        thread.start()
    for thread in threads:
        thread.join()
    rate = concurrent / (time.perf_counter() - start)
    print(f"{p50:.2f} {p99:.2f} {rate:.0f}")


def failover(bases):
    start = time.perf_counter()
    attempt = 0
    while time.perf_counter() - start < 60:
        for base in bases:
            attempt += 1
            try:
                job_id = put_job(base, f"failover-{attempt}", timeout=2)
            except Exception:
                continue
            acknowledged = time.perf_counter() - start
            while job_state(base, job_id) not in ("Failed", "Completed", "Stopped"):
                time.sleep(0.005)
            print(f"{acknowledged:.2f} {time.perf_counter() - start:.2f}")
            return
        time.sleep(0.02)
    sys.exit("no member acknowledged a job within 60 s")


if __name__ == "__main__":
    if sys.argv[1] == "submit":
        submit(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]), int(sys.argv[5]), sys.argv[6])
    else:
        failover(sys.argv[2:])
