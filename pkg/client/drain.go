package client

import (
	"context"
	"fmt"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
)

// DrainBroker asks the coordinator to hand every partition of broker id to
// the other brokers gracefully — the broker flushes, commits and releases
// each one, so producers pause for well under a second — and to give the
// broker nothing new while it runs. It returns the partitions moved. The
// broker process keeps running; stop it afterwards, or restart it to
// undrain it.
func (c *Client) DrainBroker(ctx context.Context, id string) ([]PartitionRef, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: broker id is empty", ErrInvalidRequest)
	}
	resp, err := call(ctx, c, c.api.DrainBroker, &stratav1.DrainBrokerRequest{BrokerId: id})
	if err != nil {
		return nil, err
	}
	return partitionRefs(resp.GetReleased()), nil
}
