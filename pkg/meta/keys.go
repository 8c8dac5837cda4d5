package meta

import (
	"fmt"
	"strconv"
	"strings"
)

// keys builds every etcd key the store uses. Numbers are zero-padded so that
// etcd's byte order is numeric order.
//
//	<root>/topics/<name>                                   Topic
//	<root>/partitions/<topicID>/<partition>                PartitionState (owner, epoch, next offset)
//	<root>/logstart/<topicID>/<partition>                  LogStart
//	<root>/segments/<topicID>/<partition>/<firstOffset>    SegmentEntry
//	<root>/aborted/<topicID>/<partition>/<lastOffset>      AbortedTxn (last: its abort marker's offset)
//	<root>/brokers/<brokerID>                              BrokerInfo, under the broker's lease
//	<root>/groups/<group>/offsets/<topicID>/<partition>    CommittedOffset
//	<root>/txns/<transactionalID>                          TxnState (transaction coordinator, compare on ModRevision)
//	<root>/txnpids/<producerID, 20 digits>                 TxnPID: the transactional id a producer id belongs to
//	<root>/election/coordinator                            coordinator election (etcd concurrency)
type keys struct{ root string }

func (k keys) topics() string           { return k.root + "/topics/" }
func (k keys) topic(name string) string { return k.topics() + name }

func (k keys) partitions() string               { return k.root + "/partitions/" }
func (k keys) topicPartitions(id string) string { return k.partitions() + id + "/" }
func (k keys) partition(id string, p int32) string {
	return k.topicPartitions(id) + pad32(p)
}

func (k keys) logStarts(id string) string { return k.root + "/logstart/" + id + "/" }
func (k keys) logStart(id string, p int32) string {
	return k.logStarts(id) + pad32(p)
}

func (k keys) topicSegments(id string) string { return k.root + "/segments/" + id + "/" }
func (k keys) segments(id string, p int32) string {
	return k.topicSegments(id) + pad32(p) + "/"
}
func (k keys) segment(id string, p int32, first int64) string {
	return k.segments(id, p) + pad64(first)
}

func (k keys) topicAborted(id string) string { return k.root + "/aborted/" + id + "/" }
func (k keys) aborted(id string, p int32) string {
	return k.topicAborted(id) + pad32(p) + "/"
}
func (k keys) abortedTxn(id string, p int32, last int64) string {
	return k.aborted(id, p) + pad64(last)
}

func (k keys) brokers() string              { return k.root + "/brokers/" }
func (k keys) broker(id string) string      { return k.brokers() + id }
func (k keys) groups() string               { return k.root + "/groups/" }
func (k keys) group(g string) string        { return k.groups() + g + "/" }
func (k keys) groupOffsets(g string) string { return k.group(g) + "offsets/" }
func (k keys) groupOffset(g, id string, p int32) string {
	return k.groupOffsets(g) + id + "/" + pad32(p)
}

func (k keys) txns() string            { return k.root + "/txns/" }
func (k keys) txn(id string) string    { return k.txns() + id }
func (k keys) txnPIDs() string         { return k.root + "/txnpids/" }
func (k keys) txnPID(pid int64) string { return k.txnPIDs() + pad64(pid) }

func pad32(p int32) string { return fmt.Sprintf("%06d", p) }
func pad64(o int64) string { return fmt.Sprintf("%020d", o) }

// parseTail splits the part of key after prefix into "/"-separated fields.
func parseTail(key, prefix string) []string {
	return strings.Split(strings.TrimPrefix(key, prefix), "/")
}

func parseInt32(s string) (int32, error) {
	n, err := strconv.ParseInt(s, 10, 32)
	return int32(n), err
}

func (k keys) election() string { return k.root + "/election/coordinator" }
