/*
 * The library DocumentDB loads for its RUM access method when
 * documentdb.rum_library_load_option = 'require_documentdb_extended_rum'
 * ($libdir/pg_documentdb_extended_rum, symbol documentdb_rumhandler):
 * Debian's RUM with the posting-tree root-split fix of
 * t/util/rum-leaf-fix.py (msgbus_rum.so, linked here), under that name.
 * Built and installed by t/util/store-build.sh.
 */
#include "postgres.h"
#include "fmgr.h"

PG_MODULE_MAGIC;

extern Datum rumhandler(PG_FUNCTION_ARGS);

PG_FUNCTION_INFO_V1(documentdb_rumhandler);

Datum
documentdb_rumhandler(PG_FUNCTION_ARGS)
{
    return rumhandler(fcinfo);
}
