"""Splits each sentence into its words (anchored to the sentence, so a
word lost downstream fails the sentence)."""
import storm


class SplitBolt(storm.BasicBolt):
    def process(self, tup):
        for word in tup.values[0].split():
            storm.emit([word])


SplitBolt().run()
