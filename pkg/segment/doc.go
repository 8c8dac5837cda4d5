// Package segment owns Strata's on-storage data format: Kafka-compatible record
// batches, the chunks that group them per partition, and the immutable segment
// objects that brokers write to object storage.
//
// A record batch is byte-compatible with Kafka's RecordBatch v2 (magic 2). Its
// base offset lies outside the CRC, so a broker stamps offsets into a batch that a
// producer built and compressed ([SetBaseOffset], [AssignOffsets]) without touching
// the payload; brokers and proxies never decompress on the hot path. Producers
// build batches with [EncodeBatch] or a reusable [BatchBuilder]; consumers decode
// them with [DecodeRecords] or a reusable [BatchDecoder]. A Kafka
// transaction's end marker is a control batch ([ControlBatch], [ParseMarker]),
// which readers skip.
//
// A chunk is a run of whole batches of one partition with contiguous offsets. A
// segment object is the chunks of one broker flush back to back, then a footer
// that lists every chunk with a sparse offset index, then a fixed-size trailer.
// [Writer] builds objects; [Open] reads the tail of one through a [RangeReader]
// and [Reader.ReadChunk] fetches only the byte ranges a fetch needs.
//
// Every parser in this package treats its input as untrusted: corrupt or
// truncated bytes yield an error that matches one of the sentinel errors with
// [errors.Is], never a panic, and allocations are bounded by the input size and
// by [MaxBatchBytes]. docs/segment-format.md describes every byte.
package segment
