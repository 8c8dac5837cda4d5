package objstore

import (
	"context"
	"crypto/tls"
	"encoding/base64"
	"encoding/binary"
	"errors"
	"fmt"
	"hash/crc32"
	"io"
	"iter"
	"log/slog"
	"math"
	"math/rand/v2"
	"net/http"
	"net/url"
	"strconv"
	"strings"
	"sync/atomic"
	"time"

	"github.com/aws/aws-sdk-go-v2/aws"
	"github.com/aws/aws-sdk-go-v2/aws/ratelimit"
	"github.com/aws/aws-sdk-go-v2/aws/retry"
	v4 "github.com/aws/aws-sdk-go-v2/aws/signer/v4"
	awshttp "github.com/aws/aws-sdk-go-v2/aws/transport/http"
	"github.com/aws/aws-sdk-go-v2/config"
	"github.com/aws/aws-sdk-go-v2/credentials"
	"github.com/aws/aws-sdk-go-v2/service/s3"
	"github.com/aws/aws-sdk-go-v2/service/s3/types"
	"github.com/aws/smithy-go"
	"github.com/aws/smithy-go/logging"
	"github.com/aws/smithy-go/middleware"
	"golang.org/x/sync/errgroup"
)

// Defaults for S3Config fields left at their zero value.
const (
	// DefaultRegion is used with a custom Endpoint when neither the config
	// nor the AWS configuration chain names a region; MinIO accepts it.
	DefaultRegion = "us-east-1"
	// DefaultMaxAttempts bounds the attempts of one operation, the first
	// included.
	DefaultMaxAttempts = 5
	// DefaultRequestTimeout bounds one attempt, from sending the request
	// until the whole response body has arrived.
	DefaultRequestTimeout = 30 * time.Second
	// DefaultRetryBaseDelay is the backoff before the first retry, before
	// jitter; it doubles with each further retry.
	DefaultRetryBaseDelay = 100 * time.Millisecond
	// DefaultRetryMaxDelay caps the backoff between two attempts.
	DefaultRetryMaxDelay = 5 * time.Second
)

// maxIdleConnsPerHost keeps enough idle connections to one endpoint for a
// broker's concurrent PUTs and a proxy's concurrent ranged GETs; Go's
// default of 2 would close and reopen connections under load.
const maxIdleConnsPerHost = 128

// S3Config configures an S3 store. The zero value of each optional field
// selects its Default* constant.
type S3Config struct {
	// Endpoint is the service URL, such as "http://127.0.0.1:9000" for
	// MinIO. Empty means AWS S3, with the endpoint that Region implies.
	Endpoint string `json:"endpoint,omitempty"`
	// Region is the bucket's region. Empty takes it from the AWS
	// configuration chain (AWS_REGION, ~/.aws/config) and, with a custom
	// Endpoint and nothing configured there, falls back to DefaultRegion.
	Region string `json:"region,omitempty"`
	// Bucket holds the objects. It must exist, unless CreateBucket is set.
	// Required.
	Bucket string `json:"bucket"`
	// CreateBucket makes Open create the bucket when it does not exist.
	// Off by default: a bucket name with a typo would otherwise start an
	// empty cluster quietly, and production buckets carry policies,
	// encryption and lifecycle rules that belong to whoever provisions
	// them.
	CreateBucket bool `json:"createBucket,omitempty"`
	// Prefix is put before every key inside the bucket, so that several
	// clusters can share one bucket; List strips it again. Usually it ends
	// in '/'. Empty uses the bucket's root. At most MaxPrefixLen bytes.
	Prefix string `json:"prefix,omitempty"`
	// PathStyle addresses the bucket as ENDPOINT/BUCKET rather than as
	// BUCKET.ENDPOINT. MinIO and most other S3-compatible servers need it.
	PathStyle bool `json:"pathStyle,omitempty"`
	// AccessKeyID and SecretAccessKey are static credentials. Leave both
	// empty to use the AWS credential chain: environment, shared files,
	// web identity, container and instance roles.
	AccessKeyID     string `json:"accessKeyID,omitempty"`
	SecretAccessKey string `json:"secretAccessKey,omitempty"`
	// MaxAttempts bounds the attempts of one operation, the first included;
	// 1 disables retries. Throttling (503 SlowDown), 5xx answers, timeouts,
	// connection errors and bodies cut short are retried.
	MaxAttempts int `json:"maxAttempts,omitempty"`
	// RequestTimeout bounds one attempt, from sending the request until the
	// whole response body has arrived. A timed-out attempt is retried.
	RequestTimeout time.Duration `json:"requestTimeout,omitempty"`
	// RetryBaseDelay is the backoff before the first retry; it doubles with
	// each further retry up to RetryMaxDelay. Each delay is drawn uniformly
	// between zero and that bound ("full jitter").
	RetryBaseDelay time.Duration `json:"retryBaseDelay,omitempty"`
	// RetryMaxDelay caps the backoff between two attempts.
	RetryMaxDelay time.Duration `json:"retryMaxDelay,omitempty"`
	// Logger receives a debug record for each retried attempt and the
	// SDK's own warnings. Nil discards them.
	Logger *slog.Logger `json:"-"`
	// TLS, if set, is the TLS configuration of HTTPS connections to the
	// endpoint: a CA bundle (RootCAs) and an optional client certificate.
	TLS *tls.Config `json:"-"`
}

// Validate reports the first problem with the configuration. Zero values of
// optional fields are valid; they select the defaults.
func (c S3Config) Validate() error {
	if c.Endpoint != "" {
		u, err := url.Parse(c.Endpoint)
		if err != nil {
			return fmt.Errorf("objstore: s3 endpoint: %w", err)
		}
		if (u.Scheme != "http" && u.Scheme != "https") || u.Host == "" {
			return fmt.Errorf("objstore: s3 endpoint %q: want http://HOST[:PORT] or https://HOST[:PORT]", c.Endpoint)
		}
	}
	if err := validateBucket(c.Bucket); err != nil {
		return err
	}
	if err := validatePrefix(c.Prefix); err != nil {
		return fmt.Errorf("objstore: s3 prefix: %w", err)
	}
	if len(c.Prefix) > MaxPrefixLen {
		return fmt.Errorf("objstore: s3 prefix: longer than %d bytes", MaxPrefixLen)
	}
	if (c.AccessKeyID == "") != (c.SecretAccessKey == "") {
		return errors.New("objstore: s3: set both AccessKeyID and SecretAccessKey, or neither")
	}
	switch {
	case c.MaxAttempts < 0:
		return fmt.Errorf("objstore: s3: MaxAttempts %d is negative", c.MaxAttempts)
	case c.RequestTimeout < 0:
		return fmt.Errorf("objstore: s3: RequestTimeout %v is negative", c.RequestTimeout)
	case c.RetryBaseDelay < 0:
		return fmt.Errorf("objstore: s3: RetryBaseDelay %v is negative", c.RetryBaseDelay)
	case c.RetryMaxDelay < 0:
		return fmt.Errorf("objstore: s3: RetryMaxDelay %v is negative", c.RetryMaxDelay)
	}
	if d := c.withDefaults(); d.RetryBaseDelay > d.RetryMaxDelay {
		return fmt.Errorf("objstore: s3: RetryBaseDelay %v exceeds RetryMaxDelay %v", d.RetryBaseDelay, d.RetryMaxDelay)
	}
	return nil
}

// validateBucket applies S3's bucket naming rules: 3 to 63 lowercase
// letters, digits, '.' and '-', starting and ending with a letter or digit.
func validateBucket(b string) error {
	if b == "" {
		return errors.New("objstore: s3: Bucket is required")
	}
	ok := len(b) >= 3 && len(b) <= 63 && isLowerAlnum(b[0]) && isLowerAlnum(b[len(b)-1])
	for i := 0; ok && i < len(b); i++ {
		ok = isLowerAlnum(b[i]) || b[i] == '.' || b[i] == '-'
	}
	if !ok {
		return fmt.Errorf("objstore: s3: bucket name %q: want 3-63 lowercase letters, digits, '.' and '-'", b)
	}
	return nil
}

func isLowerAlnum(c byte) bool { return 'a' <= c && c <= 'z' || '0' <= c && c <= '9' }

func (c S3Config) withDefaults() S3Config {
	if c.MaxAttempts == 0 {
		c.MaxAttempts = DefaultMaxAttempts
	}
	if c.RequestTimeout == 0 {
		c.RequestTimeout = DefaultRequestTimeout
	}
	if c.RetryBaseDelay == 0 {
		c.RetryBaseDelay = DefaultRetryBaseDelay
	}
	if c.RetryMaxDelay == 0 {
		c.RetryMaxDelay = DefaultRetryMaxDelay
	}
	return c
}

// S3 is a Store on an S3-compatible bucket. It is safe for concurrent use;
// it holds no state besides the SDK client.
type S3 struct {
	client *s3.Client
	bucket string
	prefix string
	// oneByOne is set once the service answered a batch delete
	// NotImplemented (Google Cloud Storage's S3 interface has none):
	// DeleteMany then deletes one object per request.
	oneByOne atomic.Bool
}

var _ Store = (*S3)(nil)

// NewS3 returns a store for cfg. It loads credentials and region from the
// AWS configuration chain where cfg leaves them empty, but sends no request:
// a missing bucket or bad credentials show on the first operation.
func NewS3(ctx context.Context, cfg S3Config) (*S3, error) {
	if err := cfg.Validate(); err != nil {
		return nil, err
	}
	cfg = cfg.withDefaults()
	httpClient := awshttp.NewBuildableClient().
		WithTimeout(cfg.RequestTimeout).
		WithTransportOptions(func(tr *http.Transport) {
			tr.MaxIdleConnsPerHost = maxIdleConnsPerHost
			if cfg.TLS != nil {
				tr.TLSClientConfig = cfg.TLS
			}
		})
	opts := []func(*config.LoadOptions) error{config.WithHTTPClient(httpClient)}
	if cfg.Region != "" {
		opts = append(opts, config.WithRegion(cfg.Region))
	}
	if cfg.AccessKeyID != "" {
		opts = append(opts, config.WithCredentialsProvider(
			credentials.NewStaticCredentialsProvider(cfg.AccessKeyID, cfg.SecretAccessKey, "")))
	}
	awsCfg, err := config.LoadDefaultConfig(ctx, opts...)
	if err != nil {
		return nil, fmt.Errorf("objstore: s3: load AWS config: %w", err)
	}
	if awsCfg.Region == "" {
		if cfg.Endpoint == "" {
			return nil, errors.New("objstore: s3: no region: set Region or AWS_REGION")
		}
		awsCfg.Region = DefaultRegion
	}
	client := s3.NewFromConfig(awsCfg, func(o *s3.Options) {
		if cfg.Endpoint != "" {
			o.BaseEndpoint = aws.String(cfg.Endpoint)
		}
		o.UsePathStyle = cfg.PathStyle
		o.Retryer = newRetryer(cfg)
		o.RetryMaxAttempts = 0 // else the SDK wraps our retryer with its own limit
		// The SDK's default CRC checksums use aws-chunked trailers that
		// some S3-compatible servers reject; segments carry their own
		// CRC-32C, and SigV4 covers plain-HTTP payloads.
		o.RequestChecksumCalculation = aws.RequestChecksumCalculationWhenRequired
		o.ResponseChecksumValidation = aws.ResponseChecksumValidationWhenRequired
		o.DisableLogOutputChecksumValidationSkipped = true
		o.Logger = sdkLogger{cfg.Logger}
	})
	return &S3{client: client, bucket: cfg.Bucket, prefix: cfg.Prefix}, nil
}

// Put implements Store.
func (s *S3) Put(ctx context.Context, key string, data []byte) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return opError("put", key, err)
	}
	// The payload goes unsigned, with a CRC-32C header the server checks:
	// SigV4's payload SHA-256 would cost a pass over every object on
	// both ends, where CRC-32C runs at memory speed.
	_, err := s.client.PutObject(ctx, &s3.PutObjectInput{
		Bucket:         aws.String(s.bucket),
		Key:            aws.String(s.prefix + key),
		Body:           body(ctx, data), // seekable, so a retry resends it
		ContentLength:  aws.Int64(int64(len(data))),
		ChecksumCRC32C: aws.String(crc32cBase64(data)),
	}, func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, v4.SwapComputePayloadSHA256ForUnsignedPayloadMiddleware)
	})
	if err != nil {
		return opError("put", key, s.classify(err, false))
	}
	return nil
}

// crc32cBase64 returns the CRC-32C of data as S3's x-amz-checksum-crc32c
// header carries it: base64 of the big-endian value.
func crc32cBase64(data []byte) string {
	var b [4]byte
	binary.BigEndian.PutUint32(b[:], crc32.Checksum(data, castagnoli))
	return base64.StdEncoding.EncodeToString(b[:])
}

var castagnoli = crc32.MakeTable(crc32.Castagnoli)

// Get implements Store. A range that starts at or past the end makes S3
// answer 416; Get then asks for the object's size to tell an empty read at
// the end (off == size) from an invalid range.
func (s *S3) Get(ctx context.Context, key string, off, length int64) ([]byte, error) {
	if err := ValidateKey(key); err != nil {
		return nil, err
	}
	if err := checkRange(key, off, length); err != nil {
		return nil, err
	}
	if err := ctx.Err(); err != nil {
		return nil, opError("get", key, err)
	}
	if length == 0 {
		// HTTP ranges cannot be empty; check existence and offset only.
		return s.emptyRead(ctx, key, off, length)
	}
	in := &s3.GetObjectInput{Bucket: aws.String(s.bucket), Key: aws.String(s.prefix + key)}
	toEnd := length == -1 || length > math.MaxInt64-off
	switch {
	case off == 0 && toEnd:
		// No Range header: a 0-byte object would answer 416 to "bytes=0-".
	case toEnd:
		in.Range = aws.String("bytes=" + strconv.FormatInt(off, 10) + "-")
	default:
		in.Range = aws.String("bytes=" + strconv.FormatInt(off, 10) + "-" + strconv.FormatInt(off+length-1, 10))
	}
	limit := int64(-1)
	if !toEnd {
		limit = length
	}
	var body []byte
	out, err := s.client.GetObject(ctx, in, func(o *s3.Options) {
		o.APIOptions = append(o.APIOptions, readBodyInto(&body, limit))
	})
	switch {
	case err == nil && in.Range != nil && out.ContentRange == nil:
		// The server ignored the Range header and sent the whole object.
		end, err := rangeEnd(key, off, length, int64(len(body)))
		if err != nil {
			return nil, err
		}
		return body[off:end], nil
	case err == nil:
		return body, nil
	case isNotFound(err):
		return nil, notFound(key)
	case isInvalidRange(err):
		return s.emptyRead(ctx, key, off, length)
	default:
		return nil, opError("get", key, s.classify(err, false))
	}
}

// emptyRead serves a Get whose answer is empty or an error: it returns an
// empty slice if the object exists and off is its size (or less, for a zero
// length), and the matching error otherwise.
func (s *S3) emptyRead(ctx context.Context, key string, off, length int64) ([]byte, error) {
	out, err := s.client.HeadObject(ctx, &s3.HeadObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if isNotFound(err) {
		return nil, notFound(key)
	}
	if err != nil {
		return nil, opError("get", key, err)
	}
	size := aws.ToInt64(out.ContentLength)
	end, err := rangeEnd(key, off, length, size)
	if err != nil {
		return nil, err
	}
	if end > off {
		// The server refused a range that the object, as it is now, has:
		// it was replaced between the two requests.
		return nil, opError("get", key, errors.New("object changed during the read; retry"))
	}
	return []byte{}, nil
}

// maxDeleteKeys is the most keys one DeleteObjects request takes (S3's
// limit).
const maxDeleteKeys = 1000

// oneByOneWorkers is how many DeleteObject requests DeleteMany has in
// flight against a service without batch deletes: at 10–30 ms a request,
// one at a time would take minutes for a garbage collection pass.
const oneByOneWorkers = 8

// DeleteMany implements Store: DeleteObjects requests of up to
// maxDeleteKeys keys, or, against a service without batch deletes, one
// DeleteObject per key, oneByOneWorkers at a time.
func (s *S3) DeleteMany(ctx context.Context, keys []string) []error {
	errs := make([]error, len(keys))
	for start := 0; start < len(keys); start += maxDeleteKeys {
		end := min(start+maxDeleteKeys, len(keys))
		if !s.oneByOne.Load() && s.deleteBatch(ctx, keys[start:end], errs[start:end]) {
			continue
		}
		var g errgroup.Group
		g.SetLimit(oneByOneWorkers)
		for i := start; i < end; i++ {
			g.Go(func() error { errs[i] = s.Delete(ctx, keys[i]); return nil })
		}
		_ = g.Wait() // the errors are in errs
	}
	return errs
}

// deleteBatch deletes keys in one DeleteObjects request and sets each
// key's outcome in errs. It returns false, having deleted nothing, when
// the service has no batch deletes.
func (s *S3) deleteBatch(ctx context.Context, keys []string, errs []error) bool {
	at := make(map[string]int, len(keys)) // object key → index in keys
	objs := make([]types.ObjectIdentifier, 0, len(keys))
	for i, k := range keys {
		if errs[i] = ValidateKey(k); errs[i] == nil {
			at[s.prefix+k] = i
			objs = append(objs, types.ObjectIdentifier{Key: aws.String(s.prefix + k)})
		}
	}
	if len(objs) == 0 {
		return true
	}
	out, err := s.client.DeleteObjects(ctx, &s3.DeleteObjectsInput{
		Bucket: aws.String(s.bucket),
		Delete: &types.Delete{Objects: objs, Quiet: aws.Bool(true)},
	})
	var re *awshttp.ResponseError
	if hasErrorCode(err, "NotImplemented") || errors.As(err, &re) && re.HTTPStatusCode() == http.StatusNotImplemented {
		s.oneByOne.Store(true)
		return false
	}
	if err != nil {
		for _, i := range at {
			errs[i] = opError("delete", keys[i], err)
		}
		return true
	}
	for _, e := range out.Errors {
		i, ok := at[aws.ToString(e.Key)]
		if !ok || aws.ToString(e.Code) == "NoSuchKey" {
			continue
		}
		errs[i] = opError("delete", keys[i], fmt.Errorf("%s: %s", aws.ToString(e.Code), aws.ToString(e.Message)))
	}
	return true
}

// Delete implements Store.
func (s *S3) Delete(ctx context.Context, key string) error {
	if err := ValidateKey(key); err != nil {
		return err
	}
	if err := ctx.Err(); err != nil {
		return opError("delete", key, err)
	}
	_, err := s.client.DeleteObject(ctx, &s3.DeleteObjectInput{
		Bucket: aws.String(s.bucket),
		Key:    aws.String(s.prefix + key),
	})
	if err != nil && !isNotFound(err) {
		return opError("delete", key, err)
	}
	return nil
}

// List implements Store. It fetches pages of up to 1,000 keys as the caller
// iterates.
func (s *S3) List(ctx context.Context, prefix string) iter.Seq2[ObjectInfo, error] {
	return func(yield func(ObjectInfo, error) bool) {
		if err := validatePrefix(prefix); err != nil {
			yield(ObjectInfo{}, err)
			return
		}
		if err := ctx.Err(); err != nil {
			yield(ObjectInfo{}, opError("list", prefix, err))
			return
		}
		pages := s3.NewListObjectsV2Paginator(s.client, &s3.ListObjectsV2Input{
			Bucket: aws.String(s.bucket),
			Prefix: aws.String(s.prefix + prefix),
		})
		for pages.HasMorePages() {
			page, err := pages.NextPage(ctx)
			if err != nil {
				yield(ObjectInfo{}, opError("list", prefix, err))
				return
			}
			for _, o := range page.Contents {
				info := ObjectInfo{
					Key:          strings.TrimPrefix(aws.ToString(o.Key), s.prefix),
					Size:         aws.ToInt64(o.Size),
					LastModified: aws.ToTime(o.LastModified),
				}
				if !yield(info, nil) {
					return
				}
			}
		}
	}
}

// isNotFound reports whether err is S3's answer for a missing key: NoSuchKey
// from GET, a bare 404 NotFound from HEAD.
func isNotFound(err error) bool {
	return hasErrorCode(err, "NoSuchKey", "NotFound")
}

// isInvalidRange reports whether err is S3's 416 answer to a range that
// starts at or past the end of the object.
func isInvalidRange(err error) bool {
	var re *awshttp.ResponseError
	return hasErrorCode(err, "InvalidRange") ||
		errors.As(err, &re) && re.HTTPStatusCode() == http.StatusRequestedRangeNotSatisfiable
}

func hasErrorCode(err error, codes ...string) bool {
	var ae smithy.APIError
	if err == nil || !errors.As(err, &ae) {
		return false
	}
	for _, c := range codes {
		if ae.ErrorCode() == c {
			return true
		}
	}
	return false
}

// readBodyInto returns a GetObject middleware that reads the response body
// into *dst inside the attempt, so that a body cut short or stalled past the
// request timeout is retried like any other failed attempt. A body that
// announces more than limit bytes (if limit >= 0) is refused before it is
// read.
func readBodyInto(dst *[]byte, limit int64) func(*middleware.Stack) error {
	return func(stack *middleware.Stack) error {
		return stack.Deserialize.Add(middleware.DeserializeMiddlewareFunc("strata:ReadBody",
			func(ctx context.Context, in middleware.DeserializeInput, next middleware.DeserializeHandler) (
				middleware.DeserializeOutput, middleware.Metadata, error,
			) {
				out, md, err := next.HandleDeserialize(ctx, in)
				if err != nil {
					return out, md, err
				}
				res, ok := out.Result.(*s3.GetObjectOutput)
				if !ok || res.Body == nil {
					return out, md, err
				}
				n := int64(-1) // unknown: read to EOF
				if res.ContentLength != nil {
					n = *res.ContentLength
				}
				if limit >= 0 && n > limit && res.ContentRange != nil {
					res.Body.Close()
					return out, md, fmt.Errorf("server sent %d bytes for a range of %d", n, limit)
				}
				b, err := readBody(res.Body, n)
				res.Body.Close()
				res.Body = http.NoBody
				if err != nil {
					if ctx.Err() != nil {
						return out, md, ctx.Err()
					}
					return out, md, &bodyReadError{err: err}
				}
				*dst = b
				return out, md, nil
			}), middleware.Before)
	}
}

func readBody(r io.Reader, n int64) ([]byte, error) {
	if n < 0 {
		return io.ReadAll(r)
	}
	b := make([]byte, n)
	if _, err := io.ReadFull(r, b); err != nil {
		return nil, err
	}
	return b, nil
}

// bodyReadError is a response body that failed part way; the SDK's retryer
// retries it because of RetryableError.
type bodyReadError struct{ err error }

func (e *bodyReadError) Error() string        { return "reading response body: " + e.err.Error() }
func (e *bodyReadError) Unwrap() error        { return e.err }
func (e *bodyReadError) RetryableError() bool { return true }

// newRetryer returns the SDK's standard retryer — which retries throttling,
// 5xx answers, timeouts and connection errors — with cfg's attempt bound and
// backoff, and without the SDK's client-wide retry quota, so that every
// operation gets its MaxAttempts even after a long outage.
func newRetryer(cfg S3Config) aws.RetryerV2 {
	backoff := jitterBackoff{base: cfg.RetryBaseDelay, max: cfg.RetryMaxDelay}
	std := retry.NewStandard(func(o *retry.StandardOptions) {
		o.MaxAttempts = cfg.MaxAttempts
		o.MaxBackoff = cfg.RetryMaxDelay
		o.Backoff = backoff
		o.RateLimiter = ratelimit.None
	})
	if cfg.Logger == nil {
		return std
	}
	return loggingRetryer{RetryerV2: std, log: cfg.Logger}
}

// jitterBackoff is exponential backoff with full jitter: the delay before
// retry n (1-based) is uniform in [0, min(max, base·2^(n-1))].
type jitterBackoff struct{ base, max time.Duration }

// BackoffDelay implements retry.BackoffDelayer; attempt is the number of the
// attempt that failed.
func (b jitterBackoff) BackoffDelay(attempt int, _ error) (time.Duration, error) {
	d := b.max
	if shift := max(attempt-1, 0); shift < 30 && b.base<<shift < b.max {
		d = b.base << shift
	}
	return time.Duration(rand.Int64N(int64(d) + 1)), nil
}

// loggingRetryer logs each retry the SDK decides on.
type loggingRetryer struct {
	aws.RetryerV2
	log *slog.Logger
}

func (r loggingRetryer) RetryDelay(attempt int, err error) (time.Duration, error) {
	d, derr := r.RetryerV2.RetryDelay(attempt, err)
	if derr == nil {
		r.log.Debug("objstore: s3 attempt failed; retrying",
			"attempt", attempt, "maxAttempts", r.MaxAttempts(), "delay", d, "err", err)
	}
	return d, derr
}

// sdkLogger sends the SDK's log output to an slog.Logger, or nowhere.
type sdkLogger struct{ log *slog.Logger }

func (l sdkLogger) Logf(c logging.Classification, format string, v ...any) {
	if l.log == nil {
		return
	}
	level := slog.LevelDebug
	if c == logging.Warn {
		level = slog.LevelWarn
	}
	l.log.Log(context.Background(), level, "objstore: aws sdk: "+fmt.Sprintf(format, v...))
}
