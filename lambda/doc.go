// Package lambda is agora's lambda-architecture pipeline: events arrive on
// a Kafka topic, an immutable master dataset is appended from it, a batch
// layer recomputes views from all of it on a period, a speed layer keeps
// views of what the last batch run has not seen, and queries merge both.
//
// Its subpackages follow the shape of hadoop/: plan is the pipeline spec
// (input, event schema, views, batch period, where each layer runs) with
// its checks, and view the exact aggregation and the merge of batch and
// realtime views with no event counted twice at the boundary.
package lambda
