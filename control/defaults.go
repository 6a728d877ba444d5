package control

import "time"

// Defaults the config file, the broker and the nodes share. Each applies
// where its setting is left out of the file, or left zero in a struct
// built in code; this is their one home.
const (
	// DefaultReportInterval is how often every appd and gateway reports to
	// the broker ([broker] report_interval). The broker takes a node silent
	// for three intervals for unhealthy.
	DefaultReportInterval = 2 * time.Second
	// DefaultReservation is how long an app pre-launched for a redirected
	// client waits for it ([broker] reservation).
	DefaultReservation = 30 * time.Second
	// DefaultGatewayCapacity is the most sessions a gateway carries at once,
	// its own users' and those it relays for, when [gateway.NAME] capacity
	// is left out (0 means no limit).
	DefaultGatewayCapacity = 1000
)
