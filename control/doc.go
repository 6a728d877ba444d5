// Package control is the protocol Switchyard's nodes speak to each other:
// message types, framing, and a small bidirectional RPC peer.
//
// A Peer runs over any io.ReadWriteCloser (an SSH channel in production,
// net.Pipe in tests). Each message is one frame: a 4-byte big-endian length
// and a JSON envelope. Frames over MaxFrame are refused. Calls carry an id
// and get exactly one reply; notifications carry none, are handled in
// order, and are never answered. Either side may call the other.
package control
