"""A finite spout: emits every line of sentences.txt once, with its line
number as the message ID, and again whenever Storm fails it (a timeout, a
worker that died). When wordcount.output.dir is set, every ack is appended
to acked-TASK.txt there and every fail to failed-TASK.txt;
wordcount.emit.interval.secs spaces the emits out (default: none).
wordcount.repeat emits the whole list that many times (default 1), each
emit its own message; with an output directory, each ack's complete
latency (emit to ack, in ms) is appended to latency-TASK.txt as
"ID EMIT_UNIX_MS LATENCY_MS"."""
import os
import time

import storm


class SentenceSpout(storm.Spout):
    def initialize(self, conf, context):
        with open("sentences.txt") as f:
            lines = [line.strip() for line in f if line.strip()]
        self.sentences = lines * int(conf.get("wordcount.repeat") or 1)
        self.pending = list(range(len(self.sentences)))
        self.interval = float(conf.get("wordcount.emit.interval.secs") or 0)
        self.acked = self.failed = self.latency = None
        self.emitted = {}
        out = conf.get("wordcount.output.dir")
        if out:
            task = context["taskid"]
            self.acked = open(os.path.join(out, "acked-%d.txt" % task), "a")
            self.failed = open(os.path.join(out, "failed-%d.txt" % task), "a")
            self.latency = open(os.path.join(out, "latency-%d.txt" % task), "a")

    def nextTuple(self):
        if not self.pending:
            time.sleep(0.05)  # nothing left to emit: do not spin
            return
        i = self.pending.pop(0)
        self.emitted[str(i)] = time.time()
        storm.emit([self.sentences[i]], id=str(i))
        if self.interval:
            time.sleep(self.interval)

    def ack(self, id):
        if self.acked:
            self.acked.write("%s\n" % id)
            self.acked.flush()
        start = self.emitted.pop(id, None)
        if self.latency and start is not None:
            now = time.time()
            self.latency.write("%s %.3f %.3f\n" % (id, start * 1000, (now - start) * 1000))
            self.latency.flush()

    def fail(self, id):
        self.emitted.pop(id, None)
        if self.failed:
            self.failed.write("%s\n" % id)
            self.failed.flush()
        self.pending.append(int(id))


SentenceSpout().run()
