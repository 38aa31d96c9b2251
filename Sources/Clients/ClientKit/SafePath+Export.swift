// Every client builds paths from outside names (job files, dataset metadata, the deployer's
// requests) with SafePath: clients get it with ClientKit.
@_exported import PathSafety
