package lifecycle

import (
	"context"
	"errors"
	"fmt"
	"slices"
	"time"
)

// GCStats counts what a garbage collection pass did.
type GCStats struct {
	// Listed is the number of objects under ObjectPrefix.
	Listed int
	// Marked is the number of objects newly found unreferenced.
	Marked int
	// Deleted and DeletedBytes are the objects deleted and their size.
	Deleted      int
	DeletedBytes int64
	// Unmarked is the number of marks removed without a delete (object
	// gone already, or referenced).
	Unmarked int
}

// CollectGarbage deletes segment objects that no entry references, in
// three steps, each safe to crash after:
//
//  1. List the objects under ObjectPrefix, then read every entry's object
//     key (one etcd revision). An object listed and not referenced, and
//     written more than GCGrace ago, can never become referenced again
//     (brokers and compaction commit an object within GCGrace of its PUT,
//     and nothing references an old object anew).
//  2. Mark such objects in etcd (<root>/gc/<key>) with the time they were
//     first found unreferenced, so the grace period for readers that still
//     hold an old entry survives a coordinator failover.
//  3. Delete objects marked more than GCGrace ago, after checking once more
//     that no entry references them; then remove their marks. A mark whose
//     object is gone (a crash between delete and unmark) is removed.
//
// A crash before step 3 deletes nothing; a crash inside it leaves marks
// that the next pass finishes. Nothing referenced is ever deleted, and an
// unreferenced object is deleted at most 2 × GCGrace after it was written
// or GCGrace after it stopped being referenced.
func (m *Manager) CollectGarbage(ctx context.Context) (GCStats, error) {
	start := m.cfg.Now()
	defer m.metrics.observePass("gc", time.Now())
	var st GCStats
	type obj struct{ size int64 }
	objects := map[string]obj{}
	var old []string // unreferenced candidates, written before the grace
	for o, err := range m.cfg.Store.List(ctx, m.cfg.ObjectPrefix) {
		if err != nil {
			return st, fmt.Errorf("lifecycle: list objects: %w", err)
		}
		objects[o.Key] = obj{o.Size}
		if start.Sub(o.LastModified) > m.cfg.GCGrace {
			old = append(old, o.Key)
		}
	}
	st.Listed = len(objects)
	refs, _, err := m.cfg.Meta.ReferencedObjects(ctx)
	if err != nil {
		return st, err
	}
	marks, err := m.cfg.Meta.GarbageMarks(ctx)
	if err != nil {
		return st, err
	}
	if err := m.step(ctx, StepGCList); err != nil {
		return st, err
	}

	// Step 2: mark.
	var toMark, toUnmark []string
	for _, k := range old {
		if _, ref := refs[k]; !ref {
			if _, marked := marks[k]; !marked {
				toMark = append(toMark, k)
			}
		}
	}
	for k := range marks {
		_, exists := objects[k]
		_, ref := refs[k]
		if !exists || ref {
			toUnmark = append(toUnmark, k)
		}
	}
	slices.Sort(toMark)
	if err := m.cfg.Meta.MarkGarbage(ctx, toMark, start.UnixMilli()); err != nil {
		return st, err
	}
	st.Marked = len(toMark)
	m.metrics.gcMarked.Add(float64(len(toMark)))
	if err := m.step(ctx, StepGCMark); err != nil {
		return st, err
	}

	// Step 3: sweep marks older than the grace period.
	var due []string
	for k, mk := range marks {
		_, exists := objects[k]
		_, ref := refs[k]
		if exists && !ref && start.UnixMilli()-mk.MarkedMs > m.cfg.GCGrace.Milliseconds() {
			due = append(due, k)
		}
	}
	slices.Sort(due)
	if len(due) > m.cfg.GCMaxDeletes {
		due = due[:m.cfg.GCMaxDeletes]
	}
	var errs []error
	if len(due) > 0 {
		// References may have changed since the first read; check again
		// right before deleting.
		if refs, _, err = m.cfg.Meta.ReferencedObjects(ctx); err != nil {
			return st, err
		}
		for _, k := range due {
			if _, ref := refs[k]; ref {
				toUnmark = append(toUnmark, k)
				continue
			}
			if err := m.cfg.Store.Delete(ctx, k); err != nil {
				errs = append(errs, fmt.Errorf("lifecycle: delete %s: %w", k, err))
				continue
			}
			st.Deleted++
			st.DeletedBytes += objects[k].size
			m.metrics.gcDeleted.Inc()
			m.metrics.gcDeletedBytes.Add(float64(objects[k].size))
			if err := m.step(ctx, StepGCDelete); err != nil {
				return st, err
			}
			toUnmark = append(toUnmark, k)
		}
	}
	if err := m.cfg.Meta.UnmarkGarbage(ctx, toUnmark); err != nil {
		errs = append(errs, err)
	} else {
		st.Unmarked = len(toUnmark) - st.Deleted
	}
	if st.Deleted > 0 || st.Marked > 0 {
		m.log.Info("garbage collection", "listed", st.Listed, "marked", st.Marked, "deleted", st.Deleted, "deleted_bytes", st.DeletedBytes)
	}
	return st, errors.Join(errs...)
}
