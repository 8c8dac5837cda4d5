package objstore

import (
	"context"
	"errors"
	"fmt"
	"net"
	"net/http"

	"github.com/aws/aws-sdk-go-v2/aws"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/service/s3"

	"github.com/strata-mq/strata/pkg/apierr"
)

// Errors that say why storage refused a request. They match
// apierr.ErrStorageRejected (not retriable: an operator must act) or
// apierr.ErrStorageUnavailable (retriable), so a produce that fails on them
// reaches the client with the cause in its message.
var (
	// ErrNoBucket: the bucket does not exist.
	ErrNoBucket = apierr.Alias("storage: bucket does not exist", apierr.ErrStorageRejected)
	// ErrAccessDenied: the credentials are invalid or lack a permission.
	ErrAccessDenied = apierr.Alias("storage: access denied", apierr.ErrStorageRejected)
	// ErrUnreachable: the endpoint did not answer.
	ErrUnreachable = apierr.Alias("storage: endpoint unreachable", apierr.ErrStorageUnavailable)
)

// causeError is a storage error whose message names the bucket or
// endpoint; it matches its kind (one of the errors above) and the
// underlying SDK error.
type causeError struct {
	msg  string
	kind error
	err  error
}

func (e *causeError) Error() string   { return e.msg + ": " + e.err.Error() }
func (e *causeError) Unwrap() []error { return []error{e.kind, e.err} }

// classify names the cause of an S3 error when it is one a user must fix
// or an unreachable endpoint; other errors pass through unchanged. head
// says err answers HeadBucket, whose 404 has no body and means the bucket.
func (s *S3) classify(err error, head bool) error {
	var re *awshttp.ResponseError
	status := 0
	if errors.As(err, &re) {
		status = re.HTTPStatusCode()
	}
	var ne net.Error
	switch {
	case hasErrorCode(err, "NoSuchBucket") || head && status == http.StatusNotFound:
		return &causeError{fmt.Sprintf("storage: bucket %q does not exist", s.bucket), ErrNoBucket, err}
	case hasErrorCode(err, "AccessDenied", "InvalidAccessKeyId", "SignatureDoesNotMatch", "Forbidden") || status == http.StatusForbidden:
		return &causeError{fmt.Sprintf("storage: access to bucket %q denied (check the credentials and the IAM policy)", s.bucket), ErrAccessDenied, err}
	case status == 0 && errors.As(err, &ne):
		return &causeError{fmt.Sprintf("storage: endpoint of bucket %q unreachable", s.bucket), ErrUnreachable, err}
	}
	return err
}

// CheckBucket asks S3 for the bucket (HeadBucket) and returns why it is
// not usable: ErrNoBucket, ErrAccessDenied or ErrUnreachable with the
// cause. With create, a missing bucket is created instead.
func (s *S3) CheckBucket(ctx context.Context, create bool) error {
	_, err := s.client.HeadBucket(ctx, &s3.HeadBucketInput{Bucket: aws.String(s.bucket)})
	if err == nil {
		return nil
	}
	err = s.classify(err, true)
	if create && errors.Is(err, ErrNoBucket) {
		if _, cerr := s.client.CreateBucket(ctx, &s3.CreateBucketInput{Bucket: aws.String(s.bucket)}); cerr != nil {
			return fmt.Errorf("storage: create bucket %q: %w", s.bucket, s.classify(cerr, false))
		}
		return nil
	}
	return err
}
