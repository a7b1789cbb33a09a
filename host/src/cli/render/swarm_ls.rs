//! `dmw swarm ls`: the nodes of each cluster as a table (Docker Machine's `ls` tabwriter).

use super::table::tabwrite;
use crate::usecase::swarm::Cluster;

/// One table per cluster, under a `SWARM name (asked name)` line; the leader's role reads
/// `manager (leader)`.
pub fn swarm_table(clusters: &[Cluster]) -> String {
    let mut out = String::new();
    for (i, c) in clusters.iter().enumerate() {
        if i > 0 {
            out.push('\n');
        }
        out.push_str(&format!("SWARM {} (asked {})\n", c.name, c.asked));
        let mut text = String::from("MACHINE\tHOSTNAME\tROLE\tAVAILABILITY\tSTATUS\tENGINE\n");
        for n in &c.nodes {
            let role = if n.leader {
                format!("{} (leader)", n.role)
            } else {
                n.role.clone()
            };
            // Everything but the machine name comes from the engines (hostile targets):
            // one inert, bounded cell each (no tab, newline or escape sequence).
            let cells = [
                &n.machine,
                &n.hostname,
                &role,
                &n.availability,
                &n.status,
                &n.engine_version,
            ]
            .map(|c| crate::text::sanitize::plugin_text(c, crate::text::sanitize::NAME_LIMIT));
            text.push_str(&cells.join("\t"));
            text.push('\n');
        }
        out.push_str(&tabwrite(&text));
    }
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::usecase::swarm::NodeRow;

    #[test]
    fn table() {
        let row = |m: &str, role: &str, leader| NodeRow {
            machine: m.into(),
            hostname: format!("h-{m}"),
            role: role.into(),
            availability: "active".into(),
            status: "ready".into(),
            engine_version: "20.10.24".into(),
            leader,
        };
        let c = Cluster {
            name: "m1".into(),
            asked: "m1".into(),
            nodes: vec![row("m1", "manager", true), row("w1", "worker", false)],
        };
        assert_eq!(
            swarm_table(&[c]),
            "SWARM m1 (asked m1)\nMACHINE   HOSTNAME   ROLE               AVAILABILITY   STATUS   ENGINE\nm1        h-m1       manager (leader)   active         ready    20.10.24\nw1        h-w1       worker             active         ready    20.10.24\n"
        );
    }

    #[test]
    fn engine_values_cannot_reach_the_terminal_raw() {
        let c = Cluster {
            name: "m1".into(),
            asked: "m1".into(),
            nodes: vec![NodeRow {
                machine: "m1".into(),
                hostname: "evil\x1b]0;title\x07\tx\nforged".into(),
                role: "manager".into(),
                availability: "active".into(),
                status: "ready".into(),
                engine_version: "1\r".into(),
                leader: false,
            }],
        };
        let out = swarm_table(&[c]);
        assert!(!out.contains(['\x1b', '\x07', '\r']), "{out:?}");
        assert_eq!(out.lines().count(), 3, "one row: {out:?}");
    }
}
