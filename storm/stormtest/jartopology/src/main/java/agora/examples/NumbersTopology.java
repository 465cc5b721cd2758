package agora.examples;

import java.io.IOException;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.nio.file.StandardOpenOption;
import java.util.Map;

import org.apache.storm.Config;
import org.apache.storm.StormSubmitter;
import org.apache.storm.spout.SpoutOutputCollector;
import org.apache.storm.task.TopologyContext;
import org.apache.storm.topology.BasicOutputCollector;
import org.apache.storm.topology.OutputFieldsDeclarer;
import org.apache.storm.topology.TopologyBuilder;
import org.apache.storm.topology.base.BaseBasicBolt;
import org.apache.storm.topology.base.BaseRichSpout;
import org.apache.storm.tuple.Fields;
import org.apache.storm.tuple.Tuple;
import org.apache.storm.tuple.Values;

/**
 * A topology submitted from its own main class through StormSubmitter:
 * a spout emits the numbers 1..COUNT once each (anchored, with the number
 * as message ID) and writes each number acked to DIR/acked.txt; a bolt
 * of two executors passes their squares on.
 *
 * <p>Arguments: NAME DIR COUNT.
 */
public class NumbersTopology {
    public static void main(String[] args) throws Exception {
        if (args.length != 3) {
            System.err.println("usage: NumbersTopology NAME DIR COUNT");
            System.exit(2);
        }
        TopologyBuilder b = new TopologyBuilder();
        b.setSpout("numbers", new NumberSpout(), 1);
        b.setBolt("square", new SquareBolt(), 2).shuffleGrouping("numbers");
        Config conf = new Config();
        conf.setNumWorkers(1);
        conf.put("agora.numbers.dir", args[1]);
        conf.put("agora.numbers.count", Integer.parseInt(args[2]));
        StormSubmitter.submitTopology(args[0], conf, b.createTopology());
    }

    /** Emits 1..count, then nothing; records every ack. */
    public static class NumberSpout extends BaseRichSpout {
        private SpoutOutputCollector out;
        private Path acked;
        private long count;
        private long next = 1;

        @Override
        public void open(Map<String, Object> conf, TopologyContext ctx, SpoutOutputCollector out) {
            this.out = out;
            this.acked = Path.of((String) conf.get("agora.numbers.dir"), "acked.txt");
            this.count = ((Number) conf.get("agora.numbers.count")).longValue();
        }

        @Override
        public void nextTuple() {
            if (next <= count) {
                out.emit(new Values(next), next);
                next++;
            }
        }

        @Override
        public void ack(Object id) {
            try {
                Files.writeString(acked, id + "\n", StandardCharsets.UTF_8,
                        StandardOpenOption.CREATE, StandardOpenOption.APPEND);
            } catch (IOException e) {
                throw new RuntimeException(e);
            }
        }

        @Override
        public void declareOutputFields(OutputFieldsDeclarer d) {
            d.declare(new Fields("n"));
        }
    }

    /** Emits the square of each number. */
    public static class SquareBolt extends BaseBasicBolt {
        @Override
        public void execute(Tuple t, BasicOutputCollector out) {
            long n = t.getLong(0);
            out.emit(new Values(n * n));
        }

        @Override
        public void declareOutputFields(OutputFieldsDeclarer d) {
            d.declare(new Fields("square"));
        }
    }
}
