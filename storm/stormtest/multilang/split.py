"""Splits each sentence into words, emitted anchored to the sentence."""
import multilang

multilang.handshake()


def process(t):
    for word in t["tuple"][0].split():
        multilang.send({"command": "emit", "anchors": [t["id"]], "tuple": [word], "need_task_ids": False})
    multilang.send({"command": "ack", "id": t["id"]})


multilang.bolt(process)
