"""Drives a Marathon API with the marathon client library (PyPI's
`marathon`, unchanged): create, scale, kill an instance, restart and delete an app, waiting
for each step through the client. Prints what it saw as one JSON object;
a step that fails prints what was seen so far and the error, and exits 1.

Usage: pyclient.py URL APP_ID
"""
import json
import sys
import time

from marathon import MarathonClient
from marathon.models import MarathonApp

WAIT = 90  # seconds each step may take (functional, not timing)


def wait_for(what, cond):
    deadline = time.monotonic() + WAIT
    while True:
        got = cond()
        if got:
            return got
        if time.monotonic() > deadline:
            raise TimeoutError("timed out waiting for " + what)
        time.sleep(0.2)


def running(client, app_id, n):
    """The app's task IDs once exactly n run and no deployment is in
    progress, else None."""
    if client.list_deployments():
        return None
    tasks = client.list_tasks(app_id)
    if len(tasks) != n or any(t.state != "TASK_RUNNING" for t in tasks):
        return None
    return sorted(t.id for t in tasks)


def main():
    url, app_id = sys.argv[1], sys.argv[2]
    client = MarathonClient(url, timeout=30)
    seen = {}
    try:
        app = client.create_app(app_id, MarathonApp(cmd="sleep 600", cpus=0.1, mem=16, instances=1))
        seen["created"] = {"id": app.id, "instances": app.instances, "cmd": app.cmd}
        seen["first"] = wait_for("1 instance", lambda: running(client, app_id, 1))

        seen["scale"] = client.scale_app(app_id, instances=3)
        seen["scaled"] = wait_for("3 instances", lambda: running(client, app_id, 3))
        seen["instances"] = client.get_app(app_id).instances
        # The client's other reads parse agora's answers too.
        seen["info"] = client.get_info().name
        seen["queue"] = len(client.list_queue(embed_last_unused_offers=True))
        seen["groups"] = [g.id for g in client.list_groups()]
        seen["embedded"] = len(client.get_app(app_id, embed_tasks=True, embed_counts=True, embed_deployments=True,
                                              embed_last_task_failure=True).tasks)

        killed = client.kill_task(app_id, seen["scaled"][0])
        seen["killed"] = killed.id
        seen["replaced"] = wait_for(
            "the killed instance replaced",
            lambda: (lambda ids: ids if ids and killed.id not in ids else None)(running(client, app_id, 3)))

        seen["restart"] = client.restart_app(app_id)
        old = set(seen["replaced"])
        seen["restarted"] = wait_for(
            "3 new instances",
            lambda: (lambda ids: ids if ids and not old & set(ids) else None)(running(client, app_id, 3)))

        seen["delete"] = client.delete_app(app_id)
        wait_for("the app gone", lambda: all(a.id != app_id for a in client.list_apps()))
        wait_for("the deletion to end", lambda: not client.list_deployments())
        seen["gone"] = True
        seen["apps"] = [a.id for a in client.list_apps()]
    except Exception as e:
        seen["error"] = "%s: %s" % (type(e).__name__, e)
        print(json.dumps(seen))
        raise
    print(json.dumps(seen))


if __name__ == "__main__":
    main()
