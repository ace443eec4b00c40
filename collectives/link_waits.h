// How long a rank was blocked on its ring neighbours, so that a slow link can be named: in a
// ring every rank ends up paced by the slowest link, but only that link's sender waits for
// its sends to drain while its receiver waits for the data (see findSlowLink).
#pragma once

namespace ringtrain {

// Times in seconds where a communicator reports them (Communicator::linkWaits).
struct LinkWaits {
  int sendPeer = -1;    // the rank this one sends to in the ring; -1: no ring has run
  double sendWait = 0;  // blocked until sends to it completed
  int recvPeer = -1;    // the rank this one receives from
  double recvWait = 0;  // blocked until its data arrived
};

}  // namespace ringtrain
