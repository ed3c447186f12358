#ifndef BITTEN_CZEROMQ_SHIM_H
#define BITTEN_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
