"""Appends every word it gets to words-TASK.txt in agora.test.dir, then acks it."""
import os

import multilang

conf, context = multilang.handshake()
out = open(os.path.join(conf["agora.test.dir"], "words-%d.txt" % context["taskid"]), "a")


def process(t):
    out.write(t["tuple"][0] + "\n")
    out.flush()
    multilang.send({"command": "ack", "id": t["id"]})


multilang.bolt(process)
