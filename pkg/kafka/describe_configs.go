package kafka

import (
	"context"
	"errors"
	"slices"
	"strconv"

	"github.com/twmb/franz-go/pkg/kerr"
	"github.com/twmb/franz-go/pkg/kmsg"

	"github.com/strata-mq/strata/pkg/apierr"
	"github.com/strata-mq/strata/pkg/auth"
	"github.com/strata-mq/strata/pkg/meta"
)

// DescribeConfigs v0–4 describes topics — read from etcd, so a client
// reads back what it just altered — retention.ms, retention.bytes and
// max.message.bytes from the topic's Strata configuration, and the
// read-only configs that describe Strata's behaviour (configs.go) — and
// the proxy as a broker, with a few read-only broker configs. Other
// resource types are INVALID_REQUEST.
func init() { register(kmsg.DescribeConfigs, 0, 4, (*Server).handleDescribeConfigs) }

func (s *Server) handleDescribeConfigs(ctx context.Context, r *request) (kmsg.Response, error) {
	req := r.kreq.(*kmsg.DescribeConfigsRequest)
	resp := req.ResponseKind().(*kmsg.DescribeConfigsResponse)
	for _, rr := range req.Resources {
		or := kmsg.NewDescribeConfigsResponseResource()
		or.ResourceType, or.ResourceName = rr.ResourceType, rr.ResourceName
		entries, code, err := s.configEntries(ctx, r, rr)
		or.ErrorCode, or.ErrorMessage = code, errMsg(err)
		for _, e := range entries {
			if len(rr.ConfigNames) > 0 && !slices.Contains(rr.ConfigNames, e.name) {
				continue
			}
			c := kmsg.NewDescribeConfigsResponseResourceConfig()
			c.Name, c.Value, c.ReadOnly, c.IsDefault = e.name, &e.value, e.readOnly, e.isDefault
			c.Source, c.ConfigType = kmsg.ConfigSourceDynamicTopicConfig, kmsg.ConfigTypeString
			if e.isDefault {
				c.Source = kmsg.ConfigSourceDefaultConfig
			}
			if _, err := strconv.ParseInt(e.value, 10, 64); err == nil {
				c.ConfigType = kmsg.ConfigTypeLong
			}
			or.Configs = append(or.Configs, c)
		}
		resp.Resources = append(resp.Resources, or)
	}
	return resp, nil
}

// configEntries describes one resource.
func (s *Server) configEntries(ctx context.Context, r *request, rr kmsg.DescribeConfigsRequestResource) ([]configEntry, int16, error) {
	switch rr.ResourceType {
	case kmsg.ConfigResourceTypeTopic:
		if code, err := s.authorize(ctx, r, meta.OpDescribe, auth.Topic(rr.ResourceName)); err != nil {
			return nil, code, err
		}
		// From etcd, not the view: a client that just altered a config
		// reads it back.
		t, err := s.core.Meta.GetTopic(ctx, rr.ResourceName)
		if errors.Is(err, meta.ErrTopicNotFound) {
			err = apierr.Errorf(apierr.ErrUnknownTopic, "topic %q", rr.ResourceName)
		} else if err != nil {
			err = apierr.Errorf(apierr.ErrStorageUnavailable, "read topic %q: %v", rr.ResourceName, err)
		}
		if err != nil {
			return nil, errCode(err), err
		}
		return topicConfigEntries(t, s.core.Limits.MaxBatchBytes), 0, nil
	case kmsg.ConfigResourceTypeBroker:
		if code, err := s.authorize(ctx, r, meta.OpDescribe, auth.Cluster()); err != nil {
			return nil, code, err
		}
		return []configEntry{
			{name: "auto.create.topics.enable", value: "false", readOnly: true, isDefault: true},
			{name: "message.max.bytes", value: strconv.Itoa(s.core.Limits.MaxBatchBytes), readOnly: true, isDefault: true},
			{name: "socket.request.max.bytes", value: strconv.Itoa(s.maxFrame()), readOnly: true, isDefault: true},
			{name: "default.replication.factor", value: "1", readOnly: true, isDefault: true},
		}, 0, nil
	default:
		return nil, kerr.InvalidRequest.Code, nil
	}
}
