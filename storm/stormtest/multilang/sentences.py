"""A finite spout: emits each sentence of the topology's
agora.test.sentences once, with its index as the message ID, and again when
Storm fails it; every ack is appended to acked-TASK.txt in agora.test.dir."""
import os
import time

import multilang

conf, context = multilang.handshake()
sentences = conf["agora.test.sentences"]
acked = open(os.path.join(conf["agora.test.dir"], "acked-%d.txt" % context["taskid"]), "a")
pending = list(range(len(sentences)))

while True:
    msg = multilang.read_msg()
    if isinstance(msg, list):
        continue  # task IDs of an emit (none are asked for)
    cmd = msg.get("command")
    if cmd == "next":
        if pending:
            i = pending.pop(0)
            multilang.send({"command": "emit", "id": str(i), "tuple": [sentences[i]], "need_task_ids": False})
        else:
            time.sleep(0.05)  # nothing to emit: do not spin
    elif cmd == "ack":
        acked.write("%s\n" % msg["id"])
        acked.flush()
    elif cmd == "fail":
        pending.append(int(msg["id"]))
    multilang.send({"command": "sync"})
