package gladly.flink;

import java.io.IOException;
import java.io.InputStream;
import java.io.PrintStream;
import java.net.URI;
import java.nio.charset.StandardCharsets;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Instant;
import java.time.LocalDate;
import java.time.LocalDateTime;
import java.time.ZoneOffset;
import java.util.ArrayList;
import java.util.Iterator;
import java.util.LinkedHashMap;
import java.util.List;
import java.util.Map;
import java.util.TreeMap;

import org.apache.flink.configuration.Configuration;
import org.apache.flink.runtime.minicluster.MiniCluster;
import org.apache.flink.runtime.minicluster.MiniClusterConfiguration;
import org.apache.flink.table.api.EnvironmentSettings;
import org.apache.flink.table.api.TableEnvironment;
import org.apache.flink.table.api.TableResult;
import org.apache.flink.types.Row;
import org.apache.flink.types.RowKind;
import org.apache.flink.util.CloseableIterator;

/**
 * Runs Flink SQL over gladly-kafka's topics in a local MiniCluster (streaming mode, no Flink
 * installation) and prints the final state of every table and view as JSON lines.
 *
 * <p>Usage: {@code Materialize --ddl FILE|- [--queries FILE]... [--bounded] [--only NAME,...]}
 *
 * <ul>
 *   <li>{@code --ddl}: the CREATE TABLE statements {@code gladly-kafka sql --dialect flink}
 *       prints (a file, or {@code -} for stdin).
 *   <li>{@code --queries}: more statements, e.g. the CREATE VIEWs of the questions.
 *   <li>{@code --bounded}: every table stops at the offsets that are latest when the job starts
 *       ({@code 'scan.bounded.mode' = 'latest-offset'}), so each query ends with its answer for
 *       what the topics held then. Without it the queries run until the process is stopped,
 *       and nothing is printed.
 * </ul>
 *
 * <p>Every table and view is read with a continuous {@code SELECT *}; its changelog (+I, -U, +U,
 * -D) is applied to a multiset of rows, and the rows left at the end are printed as {@code
 * {"name": ..., "row": {...}}}, then one {@code {"name": ..., "rows": N, "changes": M}} line per
 * name. Timestamps are printed as epoch milliseconds (UTC), dates as {@code yyyy-mm-dd}.
 */
public final class Materialize {
    private Materialize() {}

    public static void main(String[] args) throws Exception {
        String ddl = null;
        List<String> queries = new ArrayList<>();
        boolean bounded = false;
        List<String> only = null;
        for (int i = 0; i < args.length; i++) {
            switch (args[i]) {
                case "--ddl" -> ddl = args[++i];
                case "--queries" -> queries.add(args[++i]);
                case "--bounded" -> bounded = true;
                case "--only" -> only = List.of(args[++i].split(","));
                default -> {
                    System.err.println("flink: unknown argument " + args[i]
                            + "\nusage: Materialize --ddl FILE|- [--queries FILE]... [--bounded] [--only NAME,...]");
                    System.exit(2);
                }
            }
        }
        if (ddl == null) {
            System.err.println("flink: --ddl FILE (or - for stdin) is required: the output of"
                    + " `gladly-kafka sql --dialect flink`");
            System.exit(2);
        }
        TableEnvironment env = environment();
        List<String> tables = new ArrayList<>();
        for (String statement : Statements.split(read(ddl))) {
            env.executeSql(statement);
        }
        tables.addAll(List.of(env.listTables()));
        tables.removeAll(List.of(env.listViews()));
        if (bounded) {
            for (String t : tables) {
                env.executeSql("ALTER TABLE `" + t + "` SET ('scan.bounded.mode' = 'latest-offset')");
            }
        }
        for (String file : queries) {
            for (String statement : Statements.split(read(file))) {
                env.executeSql(statement);
            }
        }
        List<String> names = new ArrayList<>(tables);
        for (String v : env.listViews()) {
            if (!names.contains(v)) {
                names.add(v);
            }
        }
        if (only != null) {
            names.retainAll(only);
        }
        if (!bounded) {
            System.err.println("flink: running unbounded (no --bounded): stop with Ctrl-C");
        }
        materialize(env, names, System.out);
        System.exit(0);
    }

    /**
     * A streaming TableEnvironment whose jobs all run on one MiniCluster started here (UTC,
     * parallelism 1): a per-job MiniCluster, Flink's local default, would start one cluster
     * per query.
     */
    static TableEnvironment environment() throws Exception {
        Configuration conf = new Configuration();
        conf.setString("parallelism.default", "1");
        conf.setString("taskmanager.numberOfTaskSlots", "64");
        conf.setString("taskmanager.memory.managed.size", "64m");
        conf.setString("taskmanager.memory.network.min", "128m");
        conf.setString("taskmanager.memory.network.max", "128m");
        conf.setString("rest.bind-port", "0");
        conf.setString("rest.address", "127.0.0.1");
        conf.setString("rest.bind-address", "127.0.0.1");
        MiniCluster cluster = new MiniCluster(new MiniClusterConfiguration.Builder()
                .setConfiguration(conf)
                .setNumTaskManagers(1)
                .setNumSlotsPerTaskManager(64)
                .build());
        cluster.start();
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            try {
                cluster.close();
            } catch (Exception ignored) {
                // exiting anyway
            }
        }));
        URI rest = cluster.getRestAddress().get();
        Configuration client = new Configuration();
        client.setString("execution.target", "remote");
        client.setString("rest.address", rest.getHost());
        client.setString("rest.port", Integer.toString(rest.getPort()));
        client.setString("parallelism.default", "1");
        client.setString("table.local-time-zone", "UTC");
        EnvironmentSettings settings =
                EnvironmentSettings.newInstance().inStreamingMode().withConfiguration(client).build();
        return TableEnvironment.create(settings);
    }

    /**
     * Submits {@code SELECT *} of every name at once (each is its own job on the MiniCluster),
     * then drains each changelog into its final rows and prints them.
     */
    static void materialize(TableEnvironment env, List<String> names, PrintStream out)
            throws Exception {
        Map<String, TableResult> results = new LinkedHashMap<>();
        for (String name : names) {
            results.put(name, env.executeSql("SELECT * FROM `" + name + "`"));
        }
        for (Map.Entry<String, TableResult> e : results.entrySet()) {
            String name = e.getKey();
            List<String> columns = e.getValue().getResolvedSchema().getColumnNames();
            Map<String, Integer> state = new TreeMap<>();
            long changes = 0;
            try (CloseableIterator<Row> it = e.getValue().collect()) {
                while (it.hasNext()) {
                    Row row = it.next();
                    changes++;
                    RowKind kind = row.getKind();
                    row.setKind(RowKind.INSERT);
                    String json = Json.row(columns, row);
                    if (kind == RowKind.INSERT || kind == RowKind.UPDATE_AFTER) {
                        state.merge(json, 1, Integer::sum);
                    } else if (state.merge(json, -1, Integer::sum) == 0) {
                        state.remove(json);
                    }
                }
            }
            long rows = 0;
            for (Map.Entry<String, Integer> r : state.entrySet()) {
                if (r.getValue() < 0) {
                    throw new IllegalStateException(name + ": retracted a row never inserted: " + r.getKey());
                }
                for (int i = 0; i < r.getValue(); i++) {
                    out.println("{\"name\":" + Json.string(name) + ",\"row\":" + r.getKey() + "}");
                    rows++;
                }
            }
            out.println("{\"name\":" + Json.string(name) + ",\"rows\":" + rows + ",\"changes\":" + changes + "}");
            out.flush();
        }
    }

    static String read(String file) throws IOException {
        if (file.equals("-")) {
            InputStream in = System.in;
            return new String(in.readAllBytes(), StandardCharsets.UTF_8);
        }
        return Files.readString(Path.of(file));
    }

    /** Splits a SQL script into statements at semicolons outside quotes and comments. */
    static final class Statements {
        private Statements() {}

        static List<String> split(String script) {
            List<String> out = new ArrayList<>();
            StringBuilder cur = new StringBuilder();
            int i = 0;
            int n = script.length();
            while (i < n) {
                char c = script.charAt(i);
                if (c == '-' && i + 1 < n && script.charAt(i + 1) == '-') {
                    while (i < n && script.charAt(i) != '\n') {
                        i++;
                    }
                    continue;
                }
                if (c == '\'' || c == '`') {
                    int end = i + 1;
                    while (end < n) {
                        if (script.charAt(end) == c) {
                            if (end + 1 < n && script.charAt(end + 1) == c) {
                                end += 2;
                                continue;
                            }
                            break;
                        }
                        end++;
                    }
                    cur.append(script, i, Math.min(end + 1, n));
                    i = end + 1;
                    continue;
                }
                if (c == ';') {
                    add(out, cur);
                } else {
                    cur.append(c);
                }
                i++;
            }
            add(out, cur);
            return out;
        }

        private static void add(List<String> out, StringBuilder cur) {
            String s = cur.toString().trim();
            if (!s.isEmpty()) {
                out.add(s);
            }
            cur.setLength(0);
        }
    }

    /** Just enough JSON for Flink's row values. */
    static final class Json {
        private Json() {}

        static String row(List<String> columns, Row row) {
            StringBuilder b = new StringBuilder("{");
            for (int i = 0; i < columns.size(); i++) {
                if (i > 0) {
                    b.append(',');
                }
                b.append(string(columns.get(i))).append(':').append(value(row.getField(i)));
            }
            return b.append('}').toString();
        }

        static String value(Object v) {
            if (v == null) {
                return "null";
            }
            if (v instanceof String s) {
                return string(s);
            }
            if (v instanceof Double d) {
                return d.isNaN() || d.isInfinite() ? string(d.toString()) : d.toString();
            }
            if (v instanceof Float f) {
                return value(f.doubleValue());
            }
            if (v instanceof Number || v instanceof Boolean) {
                return v.toString();
            }
            if (v instanceof LocalDateTime t) {
                return Long.toString(t.toInstant(ZoneOffset.UTC).toEpochMilli());
            }
            if (v instanceof Instant t) {
                return Long.toString(t.toEpochMilli());
            }
            if (v instanceof LocalDate d) {
                return string(d.toString());
            }
            if (v instanceof Map<?, ?> m) {
                Map<String, Object> sorted = new TreeMap<>();
                m.forEach((k, x) -> sorted.put(String.valueOf(k), x));
                StringBuilder b = new StringBuilder("{");
                Iterator<Map.Entry<String, Object>> it = sorted.entrySet().iterator();
                while (it.hasNext()) {
                    Map.Entry<String, Object> e = it.next();
                    b.append(string(e.getKey())).append(':').append(value(e.getValue()));
                    if (it.hasNext()) {
                        b.append(',');
                    }
                }
                return b.append('}').toString();
            }
            if (v instanceof Object[] a) {
                StringBuilder b = new StringBuilder("[");
                for (int i = 0; i < a.length; i++) {
                    if (i > 0) {
                        b.append(',');
                    }
                    b.append(value(a[i]));
                }
                return b.append(']').toString();
            }
            if (v instanceof Row r) {
                // a nested ROW comes back by position: its fields print as f0, f1, ...
                List<String> cols = new ArrayList<>();
                for (int i = 0; i < r.getArity(); i++) {
                    cols.add("f" + i);
                }
                return row(cols, r);
            }
            return string(v.toString());
        }

        static String string(String s) {
            StringBuilder b = new StringBuilder("\"");
            for (int i = 0; i < s.length(); i++) {
                char c = s.charAt(i);
                switch (c) {
                    case '"' -> b.append("\\\"");
                    case '\\' -> b.append("\\\\");
                    case '\n' -> b.append("\\n");
                    case '\r' -> b.append("\\r");
                    case '\t' -> b.append("\\t");
                    default -> {
                        if (c < 0x20) {
                            b.append(String.format("\\u%04x", (int) c));
                        } else {
                            b.append(c);
                        }
                    }
                }
            }
            return b.append('"').toString();
        }
    }
}
