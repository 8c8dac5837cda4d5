package meta_test

import (
	"reflect"
	"testing"

	"github.com/strata-mq/strata/pkg/meta"
)

// TestGroupStateEqualSeesEveryField changes each field of a group state,
// one at a time, and requires Equal to notice; a new field that Equal does
// not compare fails here (its kind gets no change below, or Equal misses
// it). Revision alone is ignored.
func TestGroupStateEqualSeesEveryField(t *testing.T) {
	base := func() meta.GroupState {
		return meta.GroupState{
			V: 1, Epoch: 3, Assignor: "sticky", Revision: 9,
			Members: []meta.GroupMember{{
				ID: "m", ClientID: "c", Epoch: 2, PrevEpoch: 1, SessionTimeoutMs: 45000, Topics: []string{"t"},
				Owned:  []meta.GroupPartition{{TopicID: "x", Partition: 1}},
				Target: []meta.GroupPartition{{TopicID: "x", Partition: 1}}, Assigned: []meta.GroupPartition{{TopicID: "x", Partition: 1}},
			}},
			Classic: &meta.ClassicGroup{
				ProtocolType: "consumer", Protocol: "range", Generation: 4, Leader: "m", State: "Stable",
				Members: []meta.ClassicMember{{
					ID: "m", InstanceID: "i", ClientID: "c", ClientHost: "h", SessionTimeoutMs: 1, RebalanceTimeoutMs: 2,
					Protocols: []meta.ClassicProtocol{{Name: "range", Metadata: []byte{1}}}, Joined: true, Assignment: []byte{2},
				}},
			},
		}
	}
	if a, b := base(), base(); !a.Equal(b) {
		t.Fatal("equal states reported different")
	}
	b := base()
	b.Revision = 10
	if !base().Equal(b) {
		t.Fatal("Revision changed Equal")
	}
	// Walk every exported field reachable from the state and change it.
	var paths [][]int
	var walk func(typ reflect.Type, prefix []int)
	walk = func(typ reflect.Type, prefix []int) {
		for i := range typ.NumField() {
			f := typ.Field(i)
			p := append(clonePath(prefix), i)
			switch {
			case f.Name == "Revision":
			case f.Type.Kind() == reflect.Slice && f.Type.Elem().Kind() == reflect.Struct:
				walk(f.Type.Elem(), append(p, -1))
			case f.Type.Kind() == reflect.Pointer:
				walk(f.Type.Elem(), append(p, -2))
			default:
				paths = append(paths, p)
			}
		}
	}
	walk(reflect.TypeOf(meta.GroupState{}), nil)
	for _, p := range paths {
		st := base()
		changeAt(t, reflect.ValueOf(&st).Elem(), p)
		if base().Equal(st) {
			t.Errorf("changing field path %v went unnoticed by GroupState.Equal", p)
		}
	}
	if len(paths) < 25 {
		t.Fatalf("walked only %d fields", len(paths))
	}
}

func clonePath(p []int) []int { return append([]int(nil), p...) }

// changeAt follows path (field indexes; -1 the first element of a slice,
// -2 a pointer) and changes the value it ends at.
func changeAt(t *testing.T, v reflect.Value, path []int) {
	for _, i := range path {
		switch i {
		case -1:
			v = v.Index(0)
		case -2:
			v = v.Elem()
		default:
			v = v.Field(i)
		}
	}
	switch v.Kind() {
	case reflect.String:
		v.SetString(v.String() + "!")
	case reflect.Int, reflect.Int32, reflect.Int64:
		v.SetInt(v.Int() + 1)
	case reflect.Bool:
		v.SetBool(!v.Bool())
	case reflect.Slice:
		v.Set(reflect.Append(v, v.Index(0)))
	default:
		t.Fatalf("field of kind %v: teach this test (and Equal) about it", v.Kind())
	}
}
