package kafka

import (
	"context"
	"fmt"
	"slices"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	stratav1 "github.com/strata-mq/strata/api/proto/strata/v1"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// AlterConfigs v0–2 and IncrementalAlterConfigs v0–1 change a topic's
// retention.ms, retention.bytes and max.message.bytes through the
// coordinator (proxy.Admin.AlterTopic), after the same ACL check (alter on
// the topic) as gRPC's AlterTopic. As in Kafka, AlterConfigs replaces the
// topic's configs: the settable ones it leaves out (or sets to null) go
// back to their defaults; IncrementalAlterConfigs sets (SET) or resets
// (DELETE) only the ones it names. Read-only configs may be "set" to
// their one value, and DELETE of one changes nothing. APPEND and SUBTRACT
// are refused: no topic config is a list. Broker configs are read-only.
func init() {
	register(kmsg.AlterConfigs, 0, 2, (*Server).handleAlterConfigs)
	register(kmsg.IncrementalAlterConfigs, 0, 1, (*Server).handleIncrementalAlterConfigs)
}

func (s *Server) handleAlterConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.AlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.AlterConfigsResponse)
	for _, rr := range req.Resources {
		pairs := make([]configPair, len(rr.Configs))
		for i, c := range rr.Configs {
			pairs[i] = configPair{c.Name, c.Value}
		}
		var reset []string // the settable configs not set: back to default
		for _, k := range settableConfigs {
			if !slices.ContainsFunc(pairs, func(p configPair) bool { return p.Name == k && p.Value != nil }) {
				reset = append(reset, k)
			}
		}
		or := kmsg.NewAlterConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		or.ErrorCode, or.ErrorMessage = s.alterTopic(ctx, r, rr.ResourceType, rr.ResourceName, pairs, reset, req.ValidateOnly)
		resp.Resources = append(resp.Resources, or)
	}
	return resp, nil
}

func (s *Server) handleIncrementalAlterConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.IncrementalAlterConfigsRequest)
	resp := req.ResponseKind().(*kmsg.IncrementalAlterConfigsResponse)
	for _, rr := range req.Resources {
		or := kmsg.NewIncrementalAlterConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		var (
			pairs []configPair
			reset []string
		)
		for _, c := range rr.Configs {
			switch {
			case c.Op == kmsg.IncrementalAlterConfigOpSet && c.Value != nil:
				pairs = append(pairs, configPair{c.Name, c.Value})
			case c.Op == kmsg.IncrementalAlterConfigOpDelete:
				reset = append(reset, c.Name)
			default:
				or.ErrorCode = kerr.InvalidConfig.Code
				or.ErrorMessage = errMsg(fmt.Errorf("%s: only SET with a value and DELETE are supported (operation %v)", c.Name, c.Op))
			}
		}
		if or.ErrorCode == 0 {
			or.ErrorCode, or.ErrorMessage = s.alterTopic(ctx, r, rr.ResourceType, rr.ResourceName, pairs, reset, req.ValidateOnly)
		}
		resp.Resources = append(resp.Resources, or)
	}
	return resp, nil
}

// alterTopic applies configs to one resource, and resets the configs
// named in reset to their defaults, and returns the answer's error code
// and message.
func (s *Server) alterTopic(ctx context.Context, r *request, typ kmsg.ConfigResourceType, name string, pairs []configPair, reset []string, validateOnly bool) (int16, *string) {
	if typ != kmsg.ConfigResourceTypeTopic {
		return kerr.InvalidRequest.Code, errMsg(fmt.Errorf("only topic configs can be altered; %v configs are read-only", typ))
	}
	if code, err := s.authorize(ctx, r, meta.OpAlter, auth.Topic(name)); err != nil {
		return code, errMsg(err)
	}
	if _, err := s.lookupTopic(ctx, name); err != nil {
		return errCode(err), errMsg(err)
	}
	tc, err := topicConfigFromKafka(pairs)
	if err != nil {
		return createErrCode(err), errMsg(err)
	}
	fields, err := resetFields(reset)
	if err != nil {
		return createErrCode(err), errMsg(err)
	}
	if validateOnly || (tc.RetentionMs == 0 && tc.RetentionBytes == 0 && tc.MaxMessageBytes == 0 && tc.CleanupPolicy == "" && len(fields) == 0) {
		return 0, nil
	}
	if _, err := s.core.Admin.AlterTopic(ctx, &stratav1.AlterTopicRequest{Name: name, Config: tc, ResetToDefault: fields}); err != nil {
		return errCode(err), errMsg(err)
	}
	return 0, nil
}
