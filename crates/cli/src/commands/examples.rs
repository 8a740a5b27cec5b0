//! The "Examples:" section of every command's `--help`, as upstream's CLI shows them.
//! A flat list by command path, attached to the clap tree in one place ([`with_examples`]);
//! a test checks that every command has one and that every path names a real command.

/// `(command path, examples)`; the text is shown after the flags.
const EXAMPLES: &[(&str, &str)] = &[
    (
        "serve",
        "\
  # A hybrid node (orchestrator + compute) with the API on :1234 and data in ~/.bacalhau
  bacalhau serve

  # An orchestrator only, and a compute node on another machine that dials out to it
  bacalhau serve --orchestrator
  bacalhau serve --compute --orchestrators 10.0.0.5:1234 --labels zone=eu

  # Settings from a config file, overridden by one key
  bacalhau serve -c config.yaml -c Compute.AllowListedLocalPaths=/data",
    ),
    (
        "devstack",
        "\
  # An orchestrator and three compute nodes in one process, API on :1234
  bacalhau devstack --computes 3
  # The orchestrator also computes
  bacalhau devstack --orchestrators 0 --hybrids 1 --computes 2",
    ),
    (
        "docker",
        "\
  bacalhau docker run busybox:1.37.0 -- echo Hello World",
    ),
    (
        "docker run",
        "\
  # Run a container and wait for its output
  bacalhau docker run busybox:1.37.0 -- echo Hello World

  # Mount an allow-listed host folder at /inputs, collect /outputs, keep the results on the
  # node and download them afterwards
  bacalhau docker run -i file:///data/in:/inputs -o outputs:/outputs -p local \\
    busybox:1.37.0 -- sh -c 'wc -l /inputs/* > /outputs/counts.txt'
  bacalhau job get JOB_ID --output-dir results

  # Read a URL and an S3 prefix, with resource limits and a timeout
  bacalhau docker run -i https://example.org/table.csv \\
    -i s3://bucket/logs/*:/logs,opt=region=eu-west-1 \\
    --cpu 500m --memory 512mb --timeout 300 busybox:1.37.0 -- ls -R /inputs /logs

  # Submit without waiting; print only the job ID
  bacalhau docker run --wait=false --id-only busybox:1.37.0 -- sleep 60

  # Stream the output while it runs
  bacalhau docker run -f busybox:1.37.0 -- sh -c 'for i in 1 2 3; do echo $i; sleep 1; done'",
    ),
    (
        "wasm",
        "\
  bacalhau wasm run testdata/wasm/noop.wat",
    ),
    (
        "wasm run",
        "\
  # Run a local module (a .wasm binary, or .wat text compiled by the CLI), sent with the job
  bacalhau wasm run testdata/wasm/noop.wat

  # Arguments after the module go to it; inputs are mounted as for Docker jobs
  bacalhau wasm run -i file:///data:/data testdata/wasm/cat.wat /data/note.txt

  # A module the node downloads, with an environment variable
  bacalhau wasm run -e EXIT_CODE=3 https://example.org/exit_code.wasm

  # Served from the result cache when the same module ran on the same inputs before
  bacalhau wasm run --cache -p ipfs testdata/wasm/noop.wat

  # Run on three nodes and fail unless their results agree
  bacalhau wasm run --verify 3 -p ipfs testdata/wasm/noop.wat",
    ),
    (
        "job",
        "\
  bacalhau job run examples/hello.yaml
  bacalhau job list
  bacalhau job describe JOB_ID",
    ),
    (
        "job run",
        "\
  # Submit a spec (YAML or JSON, upstream's format) and wait for it
  bacalhau job run examples/hello.yaml

  # From standard input, without waiting, printing only the ID
  cat job.yaml | bacalhau job run --wait=false --id-only -

  # Check a spec without submitting it
  bacalhau job run --dry-run job.yaml",
    ),
    (
        "job validate",
        "\
  bacalhau job validate examples/hello.yaml
  # With template variables, as job run renders them
  bacalhau job validate -V name=nightly job.yaml",
    ),
    (
        "job describe",
        "\
  bacalhau job describe j-1234
  bacalhau job describe my-job-name --output json --pretty",
    ),
    (
        "job list",
        "\
  # The ten oldest jobs; then the next page
  bacalhau job list
  bacalhau job list --next-token TOKEN

  # The newest 50 jobs labelled env=prod, in every namespace, as JSON
  bacalhau job list --order-reversed --limit 50 --labels env=prod --namespace '*' --output json",
    ),
    (
        "job stop",
        "\
  bacalhau job stop j-1234 --reason 'wrong input'",
    ),
    (
        "job history",
        "\
  bacalhau job history j-1234
  bacalhau job history j-1234 --event-type execution
  # Check the job's events against the hash-chained audit log
  bacalhau job history j-1234 --verify",
    ),
    (
        "job executions",
        "\
  bacalhau job executions j-1234",
    ),
    (
        "job versions",
        "\
  bacalhau job versions j-1234",
    ),
    (
        "job rerun",
        "\
  bacalhau job rerun j-1234
  bacalhau job rerun j-1234 --version 2 --reason 'input fixed'",
    ),
    (
        "job logs",
        "\
  bacalhau job logs j-1234
  # Follow the output until the execution ends
  bacalhau job logs -f j-1234
  # The last 20 lines of one execution
  bacalhau job logs --tail=20 -e e-5678 j-1234",
    ),
    (
        "job lineage",
        "\
  # The jobs that produced what j-1234 read, and the jobs that read its result
  bacalhau job lineage j-1234
  bacalhau job lineage j-1234 --depth 2 --output json",
    ),
    (
        "job get",
        "\
  bacalhau job get j-1234
  bacalhau job get j-1234 --output-dir results --download-timeout-secs 10m",
    ),
    (
        "get",
        "\
  bacalhau get j-1234 --output-dir results",
    ),
    (
        "cluster",
        "\
  bacalhau cluster status
  bacalhau cluster join 10.0.0.4:6222",
    ),
    (
        "cluster status",
        "\
  bacalhau cluster status
  bacalhau cluster status --output json --pretty",
    ),
    (
        "cluster join",
        "\
  bacalhau cluster join 10.0.0.4:6222",
    ),
    (
        "cluster remove",
        "\
  bacalhau cluster remove orchestrator-3",
    ),
    (
        "node",
        "\
  bacalhau node list
  bacalhau node approve n-1234",
    ),
    (
        "node list",
        "\
  bacalhau node list
  bacalhau node list --output json --pretty",
    ),
    (
        "node describe",
        "\
  bacalhau node describe n-1234",
    ),
    (
        "node approve",
        "\
  bacalhau node approve n-1234 -m 'checked by ops'",
    ),
    (
        "node reject",
        "\
  bacalhau node reject n-1234 -m 'unknown machine'",
    ),
    (
        "node delete",
        "\
  bacalhau node delete n-1234",
    ),
    (
        "agent",
        "\
  bacalhau agent alive
  bacalhau agent node --output json",
    ),
    (
        "agent alive",
        "\
  bacalhau agent alive",
    ),
    (
        "agent version",
        "\
  bacalhau agent version --output json",
    ),
    (
        "agent node",
        "\
  bacalhau agent node --output yaml",
    ),
    (
        "agent config",
        "\
  bacalhau agent config --output yaml",
    ),
    (
        "agent debug",
        "\
  bacalhau agent debug",
    ),
    (
        "agent metrics",
        "\
  bacalhau agent metrics
  bacalhau agent metrics --filter jobs
  bacalhau agent metrics --raw",
    ),
    (
        "config",
        "\
  bacalhau config show
  bacalhau config set API.Port 4321",
    ),
    (
        "config list",
        "\
  # Every key with its value and meaning (keys accepted but not used here say so)
  bacalhau config list
  bacalhau config list --output csv | grep -i heartbeat
  # The effective configuration as YAML
  bacalhau config list --output yaml",
    ),
    (
        "config show",
        "\
  # What a node started here would use: defaults, files, BACALHAU_* and -c merged
  bacalhau config show
  bacalhau -c Compute.Orchestrators=10.0.0.5:1234 config show --output json",
    ),
    (
        "config set",
        "\
  bacalhau config set API.Port=4321
  bacalhau config set Compute.AllowListedLocalPaths /data,/scratch:rw
  # In another file than ~/.bacalhau/config.yaml
  bacalhau -c ./node.yaml config set Labels zone=eu",
    ),
    (
        "auth",
        "\
  bacalhau auth hash-password < password.txt",
    ),
    (
        "auth info",
        "\
  bacalhau auth info
  bacalhau auth info --output json --pretty",
    ),
    (
        "auth hash-password",
        "\
  # A bcrypt hash for API.Auth.Users[].Password
  printf '%s' 'correct horse battery staple' | bacalhau auth hash-password",
    ),
    (
        "audit",
        "\
  bacalhau audit verify
  bacalhau audit export > audit.jsonl",
    ),
    (
        "audit export",
        "\
  bacalhau audit export > audit.jsonl",
    ),
    (
        "audit verify",
        "\
  bacalhau audit verify",
    ),
    (
        "data",
        "\
  # Pin a directory on a compute node, then compute on it where it lies
  CID=$(bacalhau data add ./dataset)
  bacalhau docker run -i ipfs://$CID:/data busybox:1.37.0 -- ls /data",
    ),
    (
        "data add",
        "\
  # Pinned on the connected compute node with the most free disk; prints the CID
  bacalhau data add ./table.csv
  # On a chosen node, as CIDv1
  bacalhau data add ./dataset --node node-1 --cid-version 1",
    ),
    (
        "version",
        "\
  bacalhau version
  # Without asking the server
  bacalhau version --client",
    ),
    (
        "completion",
        "\
  # Bash: for this shell, or for every new one
  source <(bacalhau completion bash)
  bacalhau completion bash > /etc/bash_completion.d/bacalhau

  # Zsh and fish
  bacalhau completion zsh > \"${fpath[1]}/_bacalhau\"
  bacalhau completion fish > ~/.config/fish/completions/bacalhau.fish",
    ),
];

/// The command tree with each command's examples after its flags.
pub fn with_examples(mut command: clap::Command) -> clap::Command {
    for (path, text) in EXAMPLES {
        let path: Vec<&str> = path.split(' ').collect();
        command = attach(command, &path, text);
    }
    command
}

/// Sets the examples of the command at `path` below `command`.
fn attach(command: clap::Command, path: &[&str], text: &'static str) -> clap::Command {
    match path {
        // A string continued with `\` loses the first line's indent: put it back.
        [] => command.after_help(format!("Examples:\n  {}", text.trim_start())),
        [first, rest @ ..] => command.mut_subcommand(*first, |sub| attach(sub, rest, text)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::CommandFactory;

    /// Every command path, `docker run` style, below the root.
    fn paths(command: &clap::Command, prefix: &str, found: &mut Vec<String>) {
        for sub in command.get_subcommands().filter(|s| s.get_name() != "help") {
            let path = format!("{prefix}{}", sub.get_name());
            paths(sub, &format!("{path} "), found);
            found.push(path);
        }
    }

    #[test]
    fn every_command_has_examples_and_every_example_a_command() {
        let mut all = Vec::new();
        paths(&super::super::Cli::command(), "", &mut all);
        for path in &all {
            assert!(
                EXAMPLES.iter().any(|(p, _)| p == path),
                "`bacalhau {path} --help` has no examples"
            );
        }
        for (path, _) in EXAMPLES {
            assert!(all.contains(&path.to_string()), "no command `{path}`");
        }
    }

    #[test]
    fn help_shows_the_examples() {
        let mut command = with_examples(super::super::Cli::command());
        let docker = command.find_subcommand_mut("docker").unwrap();
        let help = docker
            .find_subcommand_mut("run")
            .unwrap()
            .render_help()
            .to_string();
        assert!(help.contains("Examples:"), "{help}");
        assert!(help.contains("-o outputs:/outputs -p local"), "{help}");
    }
}
