"""A finite spout: emits every line of sentences.txt once, with its line
number as the message ID, and again whenever Storm fails it (a timeout, a
worker that died). When wordcount.output.dir is set, every ack is appended
to acked-TASK.txt there and every fail to failed-TASK.txt;
wordcount.emit.interval.secs spaces the emits out (default: none)."""
import os
import time

import storm


class SentenceSpout(storm.Spout):
    def initialize(self, conf, context):
        with open("sentences.txt") as f:
            self.sentences = [line.strip() for line in f if line.strip()]
        self.pending = list(range(len(self.sentences)))
        self.interval = float(conf.get("wordcount.emit.interval.secs") or 0)
        self.acked = self.failed = None
        out = conf.get("wordcount.output.dir")
        if out:
            task = context["taskid"]
            self.acked = open(os.path.join(out, "acked-%d.txt" % task), "a")
            self.failed = open(os.path.join(out, "failed-%d.txt" % task), "a")

    def nextTuple(self):
        if not self.pending:
            time.sleep(0.05)  # nothing left to emit: do not spin
            return
        i = self.pending.pop(0)
        storm.emit([self.sentences[i]], id=str(i))
        if self.interval:
            time.sleep(self.interval)

    def ack(self, id):
        if self.acked:
            self.acked.write("%s\n" % id)
            self.acked.flush()

    def fail(self, id):
        if self.failed:
            self.failed.write("%s\n" % id)
            self.failed.flush()
        self.pending.append(int(id))


SentenceSpout().run()
