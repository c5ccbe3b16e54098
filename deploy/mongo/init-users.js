// Run once by the mongo image on a fresh data volume (/docker-entrypoint-initdb.d), as the root user it just made
// from MONGO_INITDB_ROOT_USERNAME / MONGO_INITDB_ROOT_PASSWORD_FILE. Creates the service's own user, allowed to
// read and write its own database only, and the metrics exporter's read-only monitoring user.
const fs = require("fs");
const secret = (name) => fs.readFileSync(`/run/secrets/${name}`, "utf8").trim();
const service = process.env.TASKLINKR_SERVICE;
const admin = db.getSiblingDB("admin");

admin.createUser({
  user: service,
  pwd: secret("mongo_password"),
  roles: [{ role: "readWrite", db: `tasklinkr_${service}` }],
});
admin.createUser({
  user: "exporter",
  pwd: secret("mongo_exporter_password"),
  roles: [{ role: "clusterMonitor", db: "admin" }, { role: "read", db: "local" }],
});
