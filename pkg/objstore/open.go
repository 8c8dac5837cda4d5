package objstore

import (
	"context"
	"errors"
	"fmt"
)

// Config chooses and configures a Store, for servers that take their store
// from flags or a file.
type Config struct {
	// Dir selects the filesystem store rooted at this directory. Exactly
	// one of Dir and S3.Bucket must be set.
	Dir string `json:"dir,omitempty"`
	// S3 selects the S3 store when S3.Bucket is set.
	S3 S3Config `json:"s3"`
}

// Validate reports whether the configuration names exactly one usable
// store.
func (c Config) Validate() error {
	switch {
	case c.Dir != "" && c.S3.Bucket != "":
		return errors.New("objstore: config: set either a directory or an S3 bucket, not both")
	case c.Dir == "" && c.S3.Bucket == "":
		return errors.New("objstore: config: set a directory or an S3 bucket")
	case c.S3.Bucket != "":
		return c.S3.Validate()
	}
	return nil
}

// Open returns the store the configuration selects. An S3 store is checked
// first (CheckBucket): a missing bucket (unless S3.CreateBucket), denied
// credentials or an unreachable endpoint fail Open with the cause.
func Open(ctx context.Context, c Config) (Store, error) {
	if err := c.Validate(); err != nil {
		return nil, err
	}
	if c.Dir != "" {
		return NewFS(c.Dir)
	}
	s, err := NewS3(ctx, c.S3)
	if err != nil {
		return nil, fmt.Errorf("objstore: open s3 bucket %s: %w", c.S3.Bucket, err)
	}
	// Refuse to start on a bucket that cannot be used, naming the cause,
	// rather than failing every produce later.
	if err := s.CheckBucket(ctx, c.S3.CreateBucket); err != nil {
		return nil, err
	}
	return s, nil
}
