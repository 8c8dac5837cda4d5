package client

import (
	"context"
	"fmt"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
)

// DrainOpt is an option of DrainBroker.
type DrainOpt func(*stratav1.DrainBrokerRequest)

// ForceDrain drains the broker even when it is the last live broker that
// is not draining, which leaves every partition without an owner until a
// broker is undrained, restarted or added. Without it such a drain fails
// with ErrInvalidRequest.
func ForceDrain() DrainOpt {
	return func(r *stratav1.DrainBrokerRequest) { r.Force = true }
}

// DrainBroker asks the coordinator to hand every partition of broker id to
// the other brokers gracefully — the broker flushes, commits and releases
// each one, so producers pause for well under a second — and to give the
// broker nothing new while it runs. It returns the partitions moved. The
// broker process keeps running; stop it afterwards, or undrain it with
// UndrainBroker (a restart undrains it too). Draining the last live broker
// that is not draining is refused unless ForceDrain is given.
func (c *Client) DrainBroker(ctx context.Context, id string, opts ...DrainOpt) ([]PartitionRef, error) {
	if id == "" {
		return nil, fmt.Errorf("%w: broker id is empty", ErrInvalidRequest)
	}
	req := &stratav1.DrainBrokerRequest{BrokerId: id}
	for _, o := range opts {
		o(req)
	}
	resp, err := call(ctx, c, c.api.DrainBroker, req)
	if err != nil {
		return nil, err
	}
	return partitionRefs(resp.GetReleased()), nil
}

// UndrainBroker clears the draining mark of live broker id, so that
// placement gives it partitions again: the coordinator moves a fair share
// of the partitions to it, or every partition without an owner at once.
func (c *Client) UndrainBroker(ctx context.Context, id string) error {
	if id == "" {
		return fmt.Errorf("%w: broker id is empty", ErrInvalidRequest)
	}
	_, err := call(ctx, c, c.api.UndrainBroker, &stratav1.UndrainBrokerRequest{BrokerId: id})
	return err
}
