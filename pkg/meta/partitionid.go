package meta

import "strings"

// PartitionID names one partition by its topic's ID (stable across a
// topic's renames and re-creations) and its number. It is the one key
// type for a partition across Strata's packages.
type PartitionID struct {
	TopicID   string `json:"t"`
	Partition int32  `json:"p"`
}

// Compare orders partitions by topic ID, then number.
func (a PartitionID) Compare(b PartitionID) int {
	if c := strings.Compare(a.TopicID, b.TopicID); c != 0 {
		return c
	}
	return int(a.Partition) - int(b.Partition)
}
