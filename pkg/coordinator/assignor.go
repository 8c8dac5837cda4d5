package coordinator

import (
	"cmp"
	"slices"

	"github.com/strata-mq/strata/pkg/meta"
)

// Server-side assignors of consumer groups (docs/consumer-groups.md). Both
// are deterministic: the same members, subscriptions, topics and previous
// target give the same result, so recomputing on every heartbeat moves
// nothing until something changed.
const (
	// AssignorSticky balances partition counts across members and keeps
	// every partition where it is unless balance needs it to move.
	AssignorSticky = "sticky"
	// AssignorRange gives each member of a topic's subscribers a
	// contiguous range of its partitions, as Kafka's RangeAssignor.
	AssignorRange = "range"
)

// validAssignor reports whether name is an assignor ("" = the default).
func validAssignor(name string) bool {
	return name == "" || name == AssignorSticky || name == AssignorRange
}

// assignMember is one member as an assignor sees it.
type assignMember struct {
	id     string
	topics []string // subscribed topic names, sorted
	prev   []meta.GroupPartition
}

// assign computes the target assignment with the named assignor. topics
// holds the existing topics by name; members are sorted by ID. Every
// partition of a subscribed topic goes to exactly one subscriber.
func assign(assignor string, members []assignMember, topics map[string]meta.Topic) map[string][]meta.GroupPartition {
	out := make(map[string][]meta.GroupPartition, len(members))
	if assignor == AssignorRange {
		assignRange(members, topics, out)
	} else {
		assignSticky(members, topics, out)
	}
	for id := range out {
		slices.SortFunc(out[id], meta.GroupPartition.Compare)
	}
	return out
}

// subscribers maps each existing subscribed topic to its subscribers, in
// member order, and returns the topic names sorted.
func subscribers(members []assignMember, topics map[string]meta.Topic) (map[string][]string, []string) {
	subs := map[string][]string{}
	for _, m := range members {
		for _, t := range m.topics {
			if _, ok := topics[t]; ok {
				subs[t] = append(subs[t], m.id)
			}
		}
	}
	names := make([]string, 0, len(subs))
	for t := range subs {
		names = append(names, t)
	}
	slices.Sort(names)
	return subs, names
}

func assignRange(members []assignMember, topics map[string]meta.Topic, out map[string][]meta.GroupPartition) {
	subs, names := subscribers(members, topics)
	for _, name := range names {
		t, ms := topics[name], subs[name]
		n, k := int(t.Partitions), len(ms)
		per, extra := n/k, n%k
		p := 0
		for i, id := range ms {
			cnt := per
			if i < extra {
				cnt++
			}
			for range cnt {
				out[id] = append(out[id], meta.GroupPartition{TopicID: t.ID, Partition: int32(p)})
				p++
			}
		}
	}
}

func assignSticky(members []assignMember, topics map[string]meta.Topic, out map[string][]meta.GroupPartition) {
	subs, names := subscribers(members, topics)
	eligible := map[meta.GroupPartition][]string{} // partition → subscribers
	var all []meta.GroupPartition                  // in topic-name, partition order
	subscribed := map[string]map[string]bool{}     // member → topic IDs
	for _, name := range names {
		t := topics[name]
		for p := range t.Partitions {
			gp := meta.GroupPartition{TopicID: t.ID, Partition: p}
			eligible[gp] = subs[name]
			all = append(all, gp)
		}
		for _, id := range subs[name] {
			if subscribed[id] == nil {
				subscribed[id] = map[string]bool{}
			}
			subscribed[id][t.ID] = true
		}
	}
	if len(members) == 0 {
		return
	}
	// Keep each member's previous partitions that are still valid, each
	// partition with one member only.
	taken := map[meta.GroupPartition]bool{}
	kept := map[string][]meta.GroupPartition{}
	for _, m := range members {
		for _, gp := range m.prev {
			if _, ok := eligible[gp]; ok && subscribed[m.id][gp.TopicID] && !taken[gp] {
				taken[gp] = true
				kept[m.id] = append(kept[m.id], gp)
			}
		}
	}
	// Quotas: base or base+1; the members keeping the most get the +1s.
	base, extra := len(all)/len(members), len(all)%len(members)
	order := slices.Clone(members)
	slices.SortStableFunc(order, func(a, b assignMember) int {
		return cmp.Or(cmp.Compare(len(kept[b.id]), len(kept[a.id])), cmp.Compare(a.id, b.id))
	})
	quota := map[string]int{}
	for i, m := range order {
		quota[m.id] = base
		if i < extra {
			quota[m.id]++
		}
		ks := kept[m.id]
		slices.SortFunc(ks, meta.GroupPartition.Compare)
		if len(ks) > quota[m.id] {
			for _, gp := range ks[quota[m.id]:] {
				delete(taken, gp)
			}
			ks = ks[:quota[m.id]]
		}
		out[m.id] = ks
	}
	// Hand out the rest: to the eligible member furthest below its quota,
	// or, when all are full (uneven subscriptions), to the one with least.
	for _, gp := range all {
		if taken[gp] {
			continue
		}
		best, bestRoom := "", 0
		for _, id := range eligible[gp] {
			room := quota[id] - len(out[id])
			if best == "" || room > bestRoom {
				best, bestRoom = id, room
			}
		}
		out[best] = append(out[best], gp)
	}
}
