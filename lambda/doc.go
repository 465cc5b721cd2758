// Package lambda is agora's lambda-architecture pipeline: events arrive on
// a Kafka topic, an immutable master dataset is appended from it, a batch
// layer recomputes views from all of it on a period, a speed layer keeps
// views of what the last batch run has not seen, and queries merge both.
//
// Its subpackages follow the shape of hadoop/: plan is the pipeline spec
// (input, event schema, views, batch period, where each layer runs) with
// its checks, and view the exact aggregation and the merge of batch and
// realtime views with no event counted twice at the boundary. ingest,
// batch, speed and serve are the layers, store the serving store in
// Cassandra (batch views written as generations and swapped in),
// stormspeed the speed layer as a Storm topology (a Kafka spout and a
// counting bolt, layers.speed: storm, on agora's native Storm runtime or
// submitted to a real Nimbus); pipeline runs them all in one
// process (`agora lambda up`), framework runs them as agora tasks
// (`agora lambda up --master`), and bench measures a pipeline.
//
// As tasks, the ingester, the speed layer and each batch job are
// `agora lambda ingest|speed|recompute` processes of the same binary,
// sharing the work directory (the dataset, the batch view's file) and the
// brokers; with a Hadoop framework given, the batch task submits a
// Streaming job (`agora lambda map|reduce`) there instead of recomputing
// in its own process. The serving store and the query API run inside the speed-layer
// task, not in `up`: the realtime view is that task's memory, and a query
// must read it under the same lock the speed layer applies events under —
// served from elsewhere, every query would copy the realtime view across
// a process boundary, or the speed layer would have to publish it on
// every event. The store is rebuilt when the task starts (the batch view
// from its file, the realtime view from Kafka at the batch watermark), so
// killing the task loses nothing. `up` keeps the broker (when embedded),
// the framework, the batch timer, and a stable query address that forwards
// to wherever the speed task runs.
package lambda
