"""Storm's multilang protocol, the little the test components need: JSON
messages each followed by a line "end", on stdin and stdout."""
import json
import os
import sys


def read_msg():
    lines = []
    while True:
        line = sys.stdin.readline()
        if not line:
            sys.exit(0)  # the worker went away
        line = line.rstrip("\n")
        if line == "end":
            break
        lines.append(line)
    return json.loads("\n".join(lines))


def send(msg):
    sys.stdout.write(json.dumps(msg) + "\nend\n")
    sys.stdout.flush()


def handshake():
    """Answers Storm's setup message: creates the pid file and sends the
    pid. Returns the topology configuration and the task's context."""
    setup = read_msg()
    pid = os.getpid()
    open(os.path.join(setup["pidDir"], str(pid)), "w").close()
    send({"pid": pid})
    return setup["conf"], setup["context"]


def log(msg):
    send({"command": "log", "msg": msg})


def bolt(process):
    """Runs a bolt: process(tuple_msg) for every tuple; heartbeats are
    answered with sync, task-id lists (need_task_ids) are ignored."""
    while True:
        msg = read_msg()
        if isinstance(msg, list):
            continue
        if msg.get("stream") == "__heartbeat":
            send({"command": "sync"})
            continue
        process(msg)
