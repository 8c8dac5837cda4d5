package kafka_test

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"testing"
	"time"

	"github.com/twmb/franz-go/pkg/kadm"
	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kgo"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/client"
)

// txnProduce produces values to topic's partition 0 inside one transaction
// of cl and ends it with commit (true) or abort; end false leaves it open.
func txnProduce(t *testing.T, ctx context.Context, cl *kgo.Client, topic string, values []string, end bool, commit bool) {
	t.Helper()
	if err := cl.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, v := range values {
		if err := cl.ProduceSync(ctx, &kgo.Record{Topic: topic, Partition: 0, Value: []byte(v)}).FirstErr(); err != nil {
			t.Fatalf("produce %s: %v", v, err)
		}
	}
	if !end {
		return
	}
	if err := cl.EndTransaction(ctx, kgo.TransactionEndTry(commit)); err != nil {
		t.Fatalf("end transaction (commit %v): %v", commit, err)
	}
}

// values makes n values prefix-0 … prefix-(n-1).
func values(prefix string, n int) []string {
	out := make([]string, n)
	for i := range out {
		out[i] = fmt.Sprintf("%s-%d", prefix, i)
	}
	return out
}

// readValues reads topic from the start with isolation until it has want
// values, and returns them.
func readValues(t *testing.T, c *cluster, topic string, committed bool, want int) []string {
	t.Helper()
	iso := kgo.ReadUncommitted()
	if committed {
		iso = kgo.ReadCommitted()
	}
	cl := c.client(kgo.ConsumeTopics(topic), kgo.ConsumeResetOffset(kgo.NewOffset().AtStart()), kgo.FetchIsolationLevel(iso))
	var got []string
	for len(got) < want {
		fs := cl.PollFetches(c.ctx)
		if err := c.ctx.Err(); err != nil {
			t.Fatalf("read %d of %d values of %s: %v", len(got), want, topic, err)
		}
		fs.EachError(func(_ string, _ int32, err error) { t.Fatalf("fetch: %v", err) })
		fs.EachRecord(func(r *kgo.Record) { got = append(got, string(r.Value)) })
	}
	return got
}

// TestTransactions: a franz-go transactional producer commits one
// transaction, aborts one and leaves one open. read_committed readers see
// the committed records only, stop at the open transaction's first record
// (the last stable offset, which ListOffsets answers too), and read it once
// it commits; read_uncommitted readers see every record. A second
// producer with the same transactional id fences the first: its open
// transaction is aborted, and its later produces and commits are refused.
func TestTransactions(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("tx-out", 1)
	p1 := c.client(kgo.TransactionalID("t1"), kgo.TransactionTimeout(time.Minute))

	txnProduce(t, c.ctx, p1, "tx-out", values("c", 5), true, true)
	txnProduce(t, c.ctx, p1, "tx-out", values("a", 5), true, false)
	txnProduce(t, c.ctx, p1, "tx-out", values("o", 3), false, false)

	// Offsets: c 0–4, commit marker 5, a 6–10, abort marker 11, o 12–14.
	adm := kadm.NewClient(c.client())
	lso, err := adm.ListCommittedOffsets(c.ctx, "tx-out")
	if err != nil {
		t.Fatal(err)
	}
	hw, err := adm.ListEndOffsets(c.ctx, "tx-out")
	if err != nil {
		t.Fatal(err)
	}
	if o, _ := lso.Lookup("tx-out", 0); o.Offset != 12 {
		t.Fatalf("read_committed end offset %d (%v), want 12: the open transaction's first record", o.Offset, o.Err)
	}
	if o, _ := hw.Lookup("tx-out", 0); o.Offset != 15 {
		t.Fatalf("end offset %d (%v), want 15", o.Offset, o.Err)
	}
	if got := readValues(t, c, "tx-out", true, 5); !slices.Equal(got, values("c", 5)) {
		t.Fatalf("read_committed read %v, want the committed c-0..4", got)
	}
	all := append(append(values("c", 5), values("a", 5)...), values("o", 3)...)
	if got := readValues(t, c, "tx-out", false, 13); !slices.Equal(got, all) {
		t.Fatalf("read_uncommitted read %v, want %v", got, all)
	}
	if err := p1.EndTransaction(c.ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	want := append(values("c", 5), values("o", 3)...)
	if got := readValues(t, c, "tx-out", true, 8); !slices.Equal(got, want) {
		t.Fatalf("read_committed after the commit read %v, want %v", got, want)
	}

	// Fencing: p2 takes the id over while p1 has a transaction open.
	txnProduce(t, c.ctx, p1, "tx-out", values("z", 2), false, false)
	p2 := c.client(kgo.TransactionalID("t1"))
	txnProduce(t, c.ctx, p2, "tx-out", values("n", 2), true, true)
	err = p1.ProduceSync(c.ctx, &kgo.Record{Topic: "tx-out", Partition: 0, Value: []byte("zombie")}).FirstErr()
	if err == nil {
		err = p1.EndTransaction(c.ctx, kgo.TryCommit)
	}
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("the fenced producer's produce or commit: %v, want PRODUCER_FENCED or INVALID_PRODUCER_EPOCH", err)
	}
	want = append(want, values("n", 2)...)
	if got := readValues(t, c, "tx-out", true, 10); !slices.Equal(got, want) {
		t.Fatalf("read_committed after fencing read %v, want %v (z aborted, zombie refused)", got, want)
	}
}

// TestTransactionOffsets: offsets sent with a transaction (AddOffsetsToTxn,
// TxnOffsetCommit) are the group's committed offsets once it commits, and
// are dropped when it aborts.
func TestTransactionOffsets(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("tx-in", 1)
	c.createTopic("tx-out", 1)
	p := c.client(kgo.TransactionalID("etl"))
	r := c.raw()
	commitIn := func(offset int64, commit bool) {
		t.Helper()
		pid, epoch := beginWithGroups(t, c, r, p, "etl", "readers")
		oc := kmsg.NewPtrTxnOffsetCommitRequest()
		oc.TransactionalID, oc.Group, oc.ProducerID, oc.ProducerEpoch = "etl", "readers", pid, epoch
		oc.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "tx-in", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: offset, LeaderEpoch: -1}}}}
		resp := r.roundTrip(oc).(*kmsg.TxnOffsetCommitResponse)
		wantCode(t, "TxnOffsetCommit", resp.Topics[0].Partitions[0].ErrorCode, nil)
		if err := p.EndTransaction(c.ctx, kgo.TransactionEndTry(commit)); err != nil {
			t.Fatal(err)
		}
	}
	committed := func() int64 {
		t.Helper()
		offs, err := kadm.NewClient(c.client()).FetchOffsets(c.ctx, "readers")
		if err != nil {
			t.Fatal(err)
		}
		o, ok := offs.Lookup("tx-in", 0)
		if !ok {
			return -1
		}
		return o.At
	}
	commitIn(7, false)
	if got := committed(); got != -1 {
		t.Fatalf("after an aborted transaction the group has offset %d, want none", got)
	}
	commitIn(9, true)
	if got := committed(); got != 9 {
		t.Fatalf("after a committed transaction the group has offset %d, want 9", got)
	}
}

// beginWithGroups begins a transaction of p (transactional id id) with a
// record to tx-out's partition 0 and adds groups to it, as a
// consume-transform-produce loop does before it stages its consumer's
// offsets; it returns p's producer id and epoch.
func beginWithGroups(t *testing.T, c *cluster, r *raw, p *kgo.Client, id string, groups ...string) (int64, int16) {
	t.Helper()
	if err := p.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	if err := p.ProduceSync(c.ctx, &kgo.Record{Topic: "tx-out", Partition: 0, Value: []byte("x")}).FirstErr(); err != nil {
		t.Fatal(err)
	}
	pid, epoch, err := p.ProducerID(c.ctx)
	if err != nil {
		t.Fatal(err)
	}
	for _, g := range groups {
		add := kmsg.NewPtrAddOffsetsToTxnRequest()
		add.TransactionalID, add.ProducerID, add.ProducerEpoch, add.Group = id, pid, epoch, g
		wantCode(t, "AddOffsetsToTxn "+g, r.roundTrip(add).(*kmsg.AddOffsetsToTxnResponse).ErrorCode, nil)
	}
	return pid, epoch
}

// sdkValues reads partition 0 of topic with the Go SDK (through the
// proxy's gRPC API) from the start until it has want values; with last
// set, it then polls for another half second and fails on any record.
func sdkValues(t *testing.T, c *cluster, topic string, want int, last bool, opts ...client.ConsumerOpt) []string {
	t.Helper()
	cl, err := client.New(c.proxy.Addr())
	if err != nil {
		t.Fatal(err)
	}
	defer cl.Close()
	cons, err := cl.NewConsumer(opts...)
	if err != nil {
		t.Fatal(err)
	}
	defer cons.Close()
	if err := cons.Assign(topic, 0); err != nil {
		t.Fatal(err)
	}
	var got []string
	for len(got) < want {
		recs, err := cons.Poll(c.ctx)
		if err != nil {
			t.Fatalf("poll after %d of %d values: %v", len(got), want, err)
		}
		for _, r := range recs {
			got = append(got, string(r.Value))
		}
	}
	if last {
		ctx, cancel := context.WithTimeout(c.ctx, 500*time.Millisecond)
		defer cancel()
		if recs, _ := cons.Poll(ctx); len(recs) > 0 {
			t.Fatalf("read %q past the %d values wanted", recs[0].Value, want)
		}
	}
	return got
}

// TestTransactionsThroughTheSDK: the gRPC API reads Kafka transactions as
// a read_committed Kafka client does, by default: the committed
// transactions' records only, none of an aborted one, nothing past an open
// one's first record, and never a marker; with ReadUncommitted every
// record, markers still left out.
func TestTransactionsThroughTheSDK(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("tx-sdk", 1)
	p := c.client(kgo.TransactionalID("sdk"))
	txnProduce(t, c.ctx, p, "tx-sdk", values("c", 3), true, true)
	txnProduce(t, c.ctx, p, "tx-sdk", values("a", 3), true, false)
	txnProduce(t, c.ctx, p, "tx-sdk", values("d", 2), true, true)
	txnProduce(t, c.ctx, p, "tx-sdk", values("o", 2), false, false)

	want := append(values("c", 3), values("d", 2)...)
	if got := sdkValues(t, c, "tx-sdk", 5, true); !slices.Equal(got, want) {
		t.Fatalf("the SDK read %v, want %v", got, want)
	}
	all := append(append(append(values("c", 3), values("a", 3)...), values("d", 2)...), values("o", 2)...)
	if got := sdkValues(t, c, "tx-sdk", 10, true, client.ReadUncommitted()); !slices.Equal(got, all) {
		t.Fatalf("the SDK read uncommitted %v, want %v", got, all)
	}
	if err := p.EndTransaction(c.ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	want = append(want, values("o", 2)...)
	if got := sdkValues(t, c, "tx-sdk", 7, true); !slices.Equal(got, want) {
		t.Fatalf("after the commit the SDK read %v, want %v", got, want)
	}
}

// TestTransactionTimeout: a producer that goes away with a transaction
// open holds read_committed readers of its partition back only until the
// transaction's timeout; then the coordinator aborts it, and the readers
// get the records committed after it, and never the abandoned ones. The
// abandoned producer is fenced.
func TestTransactionTimeout(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("tx-timeout", 1)
	gone := c.client(kgo.TransactionalID("gone"), kgo.TransactionTimeout(1500*time.Millisecond))
	txnProduce(t, c.ctx, gone, "tx-timeout", values("x", 3), false, false)
	later := c.client(kgo.TransactionalID("later"))
	txnProduce(t, c.ctx, later, "tx-timeout", values("y", 2), true, true)
	if got := readValues(t, c, "tx-timeout", true, 2); !slices.Equal(got, values("y", 2)) {
		t.Fatalf("read_committed read %v, want y-0, y-1 once the abandoned transaction timed out", got)
	}
	err := gone.EndTransaction(c.ctx, kgo.TryCommit)
	if !errors.Is(err, kerr.ProducerFenced) && !errors.Is(err, kerr.InvalidProducerEpoch) {
		t.Fatalf("committing the timed-out transaction: %v, want it fenced", err)
	}
}

// TestTransactionOffsetsFenceZombies stages a consumer's offsets in a
// transaction as Kafka checks them (KIP-447): from TxnOffsetCommit v3 the
// member and its generation must be the group's, so a consumer that lost
// its partitions in a rebalance cannot commit them with its transaction.
// A classic member at a stale generation gets ILLEGAL_GENERATION, one the
// group does not know UNKNOWN_MEMBER_ID, a KIP-848 member at another epoch
// ILLEGAL_GENERATION; a request naming no member (generation -1) passes,
// as Kafka lets a producer without group metadata through. Only the
// offsets that passed are committed with the transaction.
func TestTransactionOffsetsFenceZombies(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("orders", 2)
	c.createTopic("epochs", 1)
	c.createTopic("tx-out", 1)
	r := c.raw()

	// A classic member a at generation 1 of group "wire".
	a := r.roundTrip(joinReq(4, "")).(*kmsg.JoinGroupResponse).MemberID
	j := r.roundTrip(joinReq(4, a)).(*kmsg.JoinGroupResponse)
	wantCode(t, "JoinGroup", j.ErrorCode, nil)
	sync := kmsg.NewPtrSyncGroupRequest()
	sync.Version, sync.Group, sync.MemberID, sync.Generation = 3, "wire", a, j.Generation
	sync.GroupAssignment = []kmsg.SyncGroupRequestGroupAssignment{{MemberID: a}}
	wantCode(t, "SyncGroup", r.roundTrip(sync).(*kmsg.SyncGroupResponse).ErrorCode, nil)
	// A KIP-848 member of group "g-epochs".
	hb := kmsg.NewPtrConsumerGroupHeartbeatRequest()
	hb.Group, hb.MemberID, hb.RebalanceTimeoutMillis = "g-epochs", "q2nlXBo4RcqVh1lyS0Lmyw", 10_000
	hb.SubscribedTopicNames = []string{"epochs"}
	hbResp, err := hb.RequestWith(c.ctx, c.client())
	if err != nil {
		t.Fatal(err)
	}
	wantCode(t, "ConsumerGroupHeartbeat", hbResp.ErrorCode, nil)

	p := c.client(kgo.TransactionalID("zombies"))
	pid, epoch := beginWithGroups(t, c, r, p, "zombies", "wire", "g-epochs")
	stage := func(group, topic string, partition int32, member string, generation int32, offset int64) int16 {
		t.Helper()
		oc := kmsg.NewPtrTxnOffsetCommitRequest()
		oc.Version, oc.TransactionalID, oc.Group, oc.ProducerID, oc.ProducerEpoch = 3, "zombies", group, pid, epoch
		oc.MemberID, oc.Generation = member, generation
		oc.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: topic, Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: partition, Offset: offset, LeaderEpoch: -1}}}}
		return r.roundTrip(oc).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode
	}
	wantCode(t, "a member at its generation", stage("wire", "orders", 0, a, j.Generation, 5), nil)
	wantCode(t, "no member at generation -1", stage("wire", "orders", 1, "", -1, 6), nil)
	wantCode(t, "a member at a stale generation", stage("wire", "orders", 0, a, j.Generation-1, 99), kerr.IllegalGeneration)
	wantCode(t, "a member the group does not know", stage("wire", "orders", 0, "stranger", j.Generation, 99), kerr.UnknownMemberID)
	wantCode(t, "a KIP-848 member at its epoch", stage("g-epochs", "epochs", 0, hb.MemberID, hbResp.MemberEpoch, 7), nil)
	wantCode(t, "a KIP-848 member at another epoch", stage("g-epochs", "epochs", 0, hb.MemberID, hbResp.MemberEpoch+1, 99), kerr.IllegalGeneration)
	if err := p.EndTransaction(c.ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	adm := kadm.NewClient(c.client())
	for _, w := range []struct {
		group, topic string
		partition    int32
		at           int64
	}{{"wire", "orders", 0, 5}, {"wire", "orders", 1, 6}, {"g-epochs", "epochs", 0, 7}} {
		offs, err := adm.FetchOffsets(c.ctx, w.group)
		if err != nil {
			t.Fatal(err)
		}
		if o, ok := offs.Lookup(w.topic, w.partition); !ok || o.At != w.at {
			t.Fatalf("group %s, %s/%d: committed %+v (found %v), want %d", w.group, w.topic, w.partition, o, ok, w.at)
		}
	}
}

// TestDescribeAndListTransactions describes and lists transactional ids
// as kadm (and kafka-transactions.sh) do: an open transaction shows its
// state, producer, timeout, start and partitions; a committed one
// CompleteCommit and none; an id never used TRANSACTIONAL_ID_NOT_FOUND.
// Listing filters by state, producer id, duration and id pattern, and
// returns the state names Kafka does not know. DescribeProducers shows
// where the open transaction starts in each partition.
func TestDescribeAndListTransactions(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("tx-out", 2)
	open := c.client(kgo.TransactionalID("t-open"), kgo.TransactionTimeout(30*time.Second), kgo.RecordPartitioner(kgo.ManualPartitioner()))
	done := c.client(kgo.TransactionalID("t-done"))
	txnProduce(t, c.ctx, done, "tx-out", []string{"d"}, true, true)
	before := time.Now().UnixMilli()
	if err := open.BeginTransaction(); err != nil {
		t.Fatal(err)
	}
	for _, p := range []int32{1, 0} {
		if err := open.ProduceSync(c.ctx, &kgo.Record{Topic: "tx-out", Partition: p, Value: []byte("o")}).FirstErr(); err != nil {
			t.Fatal(err)
		}
	}
	openPID, openEpoch, _ := open.ProducerID(c.ctx)
	donePID, _, _ := done.ProducerID(c.ctx)

	adm := kadm.NewClient(c.client())
	ds, err := adm.DescribeTransactions(c.ctx, "t-open", "t-done", "never")
	if err != nil {
		t.Fatal(err)
	}
	o := ds["t-open"]
	if o.Err != nil || o.State != "Ongoing" || o.ProducerID != openPID || o.ProducerEpoch != openEpoch ||
		o.TimeoutMillis != 30_000 || o.StartTimestamp < before || !slices.Equal(o.Topics.Sorted()[0].Partitions, []int32{0, 1}) {
		t.Fatalf("open transaction described as %+v (producer %d epoch %d, began after %d)", o, openPID, openEpoch, before)
	}
	if d := ds["t-done"]; d.Err != nil || d.State != "CompleteCommit" || d.ProducerID != donePID || len(d.Topics) != 0 {
		t.Fatalf("committed transaction described as %+v", d)
	}
	if n := ds["never"]; !errors.Is(n.Err, kerr.TransactionalIDNotFound) {
		t.Fatalf("unused id described as %+v, want TRANSACTIONAL_ID_NOT_FOUND", n)
	}

	list := func(pids []int64, states []string, pattern string) []string {
		t.Helper()
		ls, err := adm.ListTransactionsByTxPattern(c.ctx, pids, states, pattern)
		if err != nil {
			t.Fatal(err)
		}
		var ids []string
		for _, l := range ls.Sorted() {
			ids = append(ids, l.TxnID+"="+l.State)
		}
		return ids
	}
	for _, tc := range []struct {
		what    string
		pids    []int64
		states  []string
		pattern string
		want    []string
	}{
		{"every id", nil, nil, "", []string{"t-done=CompleteCommit", "t-open=Ongoing"}},
		{"ongoing", nil, []string{"Ongoing"}, "", []string{"t-open=Ongoing"}},
		{"a state no id is in", nil, []string{"PrepareEpochFence"}, "", nil},
		{"by producer id", []int64{donePID}, nil, "", []string{"t-done=CompleteCommit"}},
		{"by a pattern of the whole id", nil, nil, "t-o.*", []string{"t-open=Ongoing"}},
		{"by a pattern of part of the id", nil, nil, "open", nil},
	} {
		if got := list(tc.pids, tc.states, tc.pattern); !slices.Equal(got, tc.want) {
			t.Errorf("list %s: %v, want %v", tc.what, got, tc.want)
		}
	}
	r := c.raw()
	req := kmsg.NewPtrListTransactionsRequest()
	req.Version, req.StateFilters = 1, []string{"Ongoing", "Sleeping"}
	resp := r.roundTrip(req).(*kmsg.ListTransactionsResponse)
	if !slices.Equal(resp.UnknownStateFilters, []string{"Sleeping"}) || len(resp.TransactionStates) != 1 {
		t.Fatalf("list with an unknown state: unknown %v, listed %+v", resp.UnknownStateFilters, resp.TransactionStates)
	}
	req.StateFilters, req.DurationFilterMillis = nil, time.Hour.Milliseconds()
	if resp := r.roundTrip(req).(*kmsg.ListTransactionsResponse); len(resp.TransactionStates) != 0 {
		t.Fatalf("transactions running longer than an hour: %+v", resp.TransactionStates)
	}
	bad := "("
	req.Version, req.DurationFilterMillis, req.TransactionalIDPattern = 2, -1, &bad
	wantCode(t, "list with an invalid pattern", r.roundTrip(req).(*kmsg.ListTransactionsResponse).ErrorCode, kerr.InvalidRegularExpression)

	// DescribeProducers shows the open transaction's first offset in each
	// of its partitions, until it ends.
	txnStart := func(p int32) int64 {
		t.Helper()
		var s kadm.TopicsSet
		s.Add("tx-out", p)
		dp, err := adm.DescribeProducers(c.ctx, s)
		if err != nil {
			t.Fatal(err)
		}
		part := dp["tx-out"].Partitions[p]
		if part.Err != nil {
			t.Fatalf("DescribeProducers of partition %d: %v", p, part.Err)
		}
		ap, ok := part.ActiveProducers[openPID]
		if !ok || ap.ProducerEpoch != openEpoch {
			t.Fatalf("partition %d's producers %+v lack %d at epoch %d", p, part.ActiveProducers, openPID, openEpoch)
		}
		return ap.CurrentTxnStartOffset
	}
	for _, p := range []int32{0, 1} {
		if got := txnStart(p); got < 0 {
			t.Fatalf("partition %d: open transaction starts at %d", p, got)
		}
	}
	dr := kmsg.NewPtrDescribeProducersRequest()
	dr.Topics = []kmsg.DescribeProducersRequestTopic{{Topic: "tx-out", Partitions: []int32{2}}}
	wantCode(t, "DescribeProducers of a partition the topic lacks",
		r.roundTrip(dr).(*kmsg.DescribeProducersResponse).Topics[0].Partitions[0].ErrorCode, kerr.UnknownTopicOrPartition)
	if err := open.EndTransaction(c.ctx, kgo.TryAbort); err != nil {
		t.Fatal(err)
	}
	if got := txnStart(0); got != -1 {
		t.Fatalf("after the abort the transaction starts at %d, want -1", got)
	}
}

// TestOffsetFetchRequireStable asks for a group's offsets while a
// transaction has staged one and not committed it: a read_committed
// consumer (RequireStable, v7 and the batched v8+) gets
// UNSTABLE_OFFSET_COMMIT for that partition and retries, as KIP-447 has
// Kafka answer, so it cannot start from the offset before the
// transaction's; other partitions, and a request without RequireStable,
// get the committed offsets. Once the transaction commits, the staged
// offset is the answer.
func TestOffsetFetchRequireStable(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("tx-in", 2)
	c.createTopic("tx-out", 1)
	r := c.raw()
	p := c.client(kgo.TransactionalID("stable"))
	pid, epoch := beginWithGroups(t, c, r, p, "stable", "readers")
	oc := kmsg.NewPtrTxnOffsetCommitRequest()
	oc.TransactionalID, oc.Group, oc.ProducerID, oc.ProducerEpoch = "stable", "readers", pid, epoch
	oc.Topics = []kmsg.TxnOffsetCommitRequestTopic{{Topic: "tx-in", Partitions: []kmsg.TxnOffsetCommitRequestTopicPartition{{Partition: 0, Offset: 9, LeaderEpoch: -1}}}}
	wantCode(t, "TxnOffsetCommit", r.roundTrip(oc).(*kmsg.TxnOffsetCommitResponse).Topics[0].Partitions[0].ErrorCode, nil)

	fetch := func(version int16, stable bool) map[int32]kmsg.OffsetFetchResponseGroupTopicPartition {
		t.Helper()
		req := kmsg.NewPtrOffsetFetchRequest()
		req.Version, req.RequireStable = version, stable
		if version >= 8 {
			req.Groups = []kmsg.OffsetFetchRequestGroup{{Group: "readers", Topics: []kmsg.OffsetFetchRequestGroupTopic{{Topic: "tx-in", Partitions: []int32{0, 1}}}}}
			resp := r.roundTrip(req).(*kmsg.OffsetFetchResponse)
			out := map[int32]kmsg.OffsetFetchResponseGroupTopicPartition{}
			for _, p := range resp.Groups[0].Topics[0].Partitions {
				out[p.Partition] = p
			}
			return out
		}
		req.Group, req.Topics = "readers", []kmsg.OffsetFetchRequestTopic{{Topic: "tx-in", Partitions: []int32{0, 1}}}
		resp := r.roundTrip(req).(*kmsg.OffsetFetchResponse)
		out := map[int32]kmsg.OffsetFetchResponseGroupTopicPartition{}
		for _, p := range resp.Topics[0].Partitions {
			out[p.Partition] = kmsg.OffsetFetchResponseGroupTopicPartition{Partition: p.Partition, Offset: p.Offset, ErrorCode: p.ErrorCode}
		}
		return out
	}
	for _, v := range []int16{7, 8, 9} {
		got := fetch(v, true)
		wantCode(t, fmt.Sprintf("v%d stable fetch of the staged partition", v), got[0].ErrorCode, kerr.UnstableOffsetCommit)
		wantCode(t, fmt.Sprintf("v%d stable fetch of another partition", v), got[1].ErrorCode, nil)
		if got := fetch(v, false); got[0].ErrorCode != 0 || got[0].Offset != -1 {
			t.Fatalf("v%d fetch without RequireStable: %+v, want no offset and no error", v, got[0])
		}
	}
	if err := p.EndTransaction(c.ctx, kgo.TryCommit); err != nil {
		t.Fatal(err)
	}
	for _, v := range []int16{7, 9} {
		if got := fetch(v, true); got[0].ErrorCode != 0 || got[0].Offset != 9 {
			t.Fatalf("v%d stable fetch after the commit: %+v, want offset 9", v, got[0])
		}
	}
}

// TestTxnRequestsInOrder: a connection's transaction coordinator requests
// for one transactional id are served in the order they were sent, as
// Kafka serves them. librdkafka sends EndTxn right behind an
// AddPartitionsToTxn whose answer it has not read; served the other way
// round, the abort found no transaction (INVALID_TXN_STATE, which
// librdkafka takes as fatal).
func TestTxnRequestsInOrder(t *testing.T) {
	c := startCluster(t, clusterOpts{})
	c.createTopic("tx-ord", 1)
	r := c.raw()
	id := "ordered"
	init := kmsg.NewPtrInitProducerIDRequest()
	init.Version, init.TransactionalID, init.TransactionTimeoutMillis = 4, &id, 60_000
	ir := r.roundTrip(init).(*kmsg.InitProducerIDResponse)
	wantCode(t, "InitProducerId", ir.ErrorCode, nil)
	for i := range 20 {
		add := kmsg.NewPtrAddPartitionsToTxnRequest()
		add.Version, add.TransactionalID, add.ProducerID, add.ProducerEpoch = 3, id, ir.ProducerID, ir.ProducerEpoch
		add.Topics = []kmsg.AddPartitionsToTxnRequestTopic{{Topic: "tx-ord", Partitions: []int32{0}}}
		end := kmsg.NewPtrEndTxnRequest()
		end.Version, end.TransactionalID, end.ProducerID, end.ProducerEpoch, end.Commit = 3, id, ir.ProducerID, ir.ProducerEpoch, false
		r.send(add)
		r.send(end)
		addResp, endResp := add.ResponseKind().(*kmsg.AddPartitionsToTxnResponse), end.ResponseKind().(*kmsg.EndTxnResponse)
		r.recv(addResp)
		r.recv(endResp)
		wantCode(t, fmt.Sprintf("AddPartitionsToTxn %d", i), addResp.Topics[0].Partitions[0].ErrorCode, nil)
		wantCode(t, fmt.Sprintf("EndTxn %d right behind it", i), endResp.ErrorCode, nil)
	}
}
