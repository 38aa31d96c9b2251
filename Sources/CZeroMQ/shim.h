#ifndef ROBOSIM_CZEROMQ_SHIM_H
#define ROBOSIM_CZEROMQ_SHIM_H
#include <zmq.h>
#endif
