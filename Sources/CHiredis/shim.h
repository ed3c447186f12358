#ifndef BITTEN_CHIREDIS_SHIM_H
#define BITTEN_CHIREDIS_SHIM_H
#include <hiredis/hiredis.h>
#include <hiredis/async.h>
#endif
