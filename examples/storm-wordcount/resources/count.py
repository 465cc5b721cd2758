"""Counts words. When wordcount.output.dir is set, the task's counts so
far are written to counts-TASK.json there (replaced whole) before each
tuple is acked."""
import json
import os

import storm


class CountBolt(storm.BasicBolt):
    def initialize(self, conf, context):
        self.counts = {}
        self.path = None
        out = conf.get("wordcount.output.dir")
        if out:
            self.path = os.path.join(out, "counts-%d.json" % context["taskid"])

    def process(self, tup):
        word = tup.values[0]
        self.counts[word] = self.counts.get(word, 0) + 1
        if self.path:
            tmp = self.path + ".tmp"
            with open(tmp, "w") as f:
                json.dump(self.counts, f)
            os.replace(tmp, self.path)


CountBolt().run()
