// Package kafka is agora's home for Apache Kafka, the log the lambda
// pipelines ingest through: the broker comes from `agora dist install
// kafka` (a KRaft broker and controller in one JVM, no ZooKeeper), and
// agora's Go code talks to it with franz-go.
//
// Its subpackages follow the shape of hadoop/: kafkatest starts a real
// broker for tests.
package kafka
