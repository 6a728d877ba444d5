package appd

import (
	"context"
	"fmt"
	"time"

	"golang.org/x/crypto/ssh"

	"switchyard/control"
	"switchyard/safelog"
)

// SetGateways names the gateways that reach this server (their reach
// includes it): only they may open session channels on it. It replaces
// the previous list (config reload) and applies to the next channel, on
// connections already open too; running sessions are untouched. Until
// it is first called, no gateway may.
func (m *Manager) SetGateways(names []string) {
	set := make(map[string]bool, len(names))
	for _, n := range names {
		set[n] = true
	}
	m.mu.Lock()
	m.gateways = set
	m.mu.Unlock()
}

// reaches reports whether gateway node may open session channels here.
func (m *Manager) reaches(node string) bool {
	m.mu.Lock()
	defer m.mu.Unlock()
	return m.gateways[node]
}

// HandleChannel serves one channel that the authenticated node opened on
// appd's listener: a control.ChannelSpawn (HandleSpawn) or a
// control.ChannelAttach (HandleAttach, which also claims a pre-launched
// session), from a gateway SetGateways names. Authorisation goes by node,
// the gateway whose key opened the connection: a relayed channel arrives
// on the relaying gateway's connection, so that gateway must reach this
// server, and the client's gateway the request names is only reported.
// A channel of another type, or from a gateway that does not reach this
// server, is rejected with its reason; the refusals are logged once per
// gateway and window.
func (m *Manager) HandleChannel(ctx context.Context, nc ssh.NewChannel, node string) {
	typ := nc.ChannelType()
	if typ != control.ChannelSpawn && typ != control.ChannelAttach {
		nc.Reject(ssh.UnknownChannelType, "appd accepts only spawn and attach channels")
		return
	}
	if !m.reaches(node) {
		m.refuseGateway(nc, node)
		return
	}
	if typ == control.ChannelSpawn {
		m.HandleSpawn(ctx, nc, node)
		return
	}
	m.HandleAttach(ctx, nc, node)
}

// refuseGateway rejects a channel from a gateway that does not reach this
// server.
func (m *Manager) refuseGateway(nc ssh.NewChannel, node string) {
	msg := fmt.Sprintf("%s: gateway %s does not reach server %s", control.CodeNoServer, node, m.Server)
	if m.refusalLog().Allow(node) {
		m.logger().Warn("channel refused: gateway does not reach this server", "gateway", node,
			"type", nc.ChannelType())
	}
	if err := nc.Reject(ssh.Prohibited, msg); err != nil {
		m.logger().Debug("reject failed", "gateway", node, "err", err)
	}
}

// refusalLog summarises refusals per gateway.
func (m *Manager) refusalLog() *safelog.Repeats {
	m.refusedOnce.Do(func() {
		m.refused.Summary = func(node string, n int, w time.Duration) {
			m.logger().Warn(fmt.Sprintf("%d more channels refused from gateway %s in the last %s: it does not reach this server",
				n, node, w), "gateway", node)
		}
	})
	return &m.refused
}
