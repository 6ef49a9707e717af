//! The `urja sim` command line: [`SimArgs`] (a `clap::Args`, so the binary embeds it) and its
//! translation into a [`FleetConfig`].

use std::net::Ipv4Addr;
use std::path::PathBuf;

use crate::faults::FaultSpec;
use crate::fleet::{FleetConfig, Transport};

/// Serve a fleet of simulated IS 15959 smart meters, each on its own loopback address.
#[derive(Debug, Clone, clap::Args)]
#[command(after_long_help = FAULTS_HELP)]
pub struct SimArgs {
    /// Number of meters to serve.
    #[arg(long, default_value_t = 1)]
    pub meters: u32,
    /// Address of the first meter; the next meters take the following addresses
    /// (127.1.0.255 is followed by 127.1.1.0).
    #[arg(long, default_value = "127.1.0.1")]
    pub base_address: Ipv4Addr,
    /// TCP port every meter listens on (the DLMS port is 4059).
    #[arg(long, default_value_t = 4059)]
    pub port: u16,
    /// Seed of the fleet: the same seed gives the same meters, keys, loads and events. The
    /// keys are derived from it, so the seed is as secret as the keys: a simulator, not a key
    /// generator; never use its keys for real meters.
    #[arg(long, default_value_t = 1)]
    pub seed: u64,
    /// Write the meters' addresses and keys to this file (JSON, or CSV when it ends in .csv).
    #[arg(long, value_name = "FILE")]
    pub keys_out: Option<PathBuf>,
    /// Framing on the TCP connection.
    #[arg(long, value_enum, default_value_t = Transport::Wrapper)]
    pub transport: Transport,
    /// Push alerts (DataNotification, general-glo-ciphered with the meter's keys) to HOST:PORT.
    #[arg(long, value_name = "HOST:PORT")]
    pub push_to: Option<String>,
    /// Inject faults, e.g. "no-answer=2%,slow=5%:3s,drop=1%,corrupt=1%,skew=5%:600s,power-off=2%:2h,flaky=5%:30%"
    /// (see below).
    #[arg(long, value_name = "SPEC", value_parser = parse_faults)]
    pub faults: Option<FaultSpec>,
    /// Block-load capture period in minutes.
    #[arg(long, default_value_t = 15, value_parser = parse_period)]
    pub capture_period: u8,
    /// A grid that never fails on its own: no scheduled outages (the power-off fault and
    /// on-demand outages still apply).
    #[arg(long)]
    pub no_outages: bool,
}

const FAULTS_HELP: &str = "\
Faults (--faults): a comma-separated list of KIND=WHO[:PARAM]. WHO is a share of the fleet
(2%, 0.5%) or one meter by its number (#7 = the 7th meter, serial URJ10000007). Which meters a
share picks is decided by the seed.
  no-answer          accepts connections and never replies
  slow[:DELAY]       delays every reply (default 3s)
  drop               closes the connection after the association, before the first answer
  corrupt            every frame it sends is malformed (wrong wrapper version / bad HDLC FCS)
  skew[:OFFSET]      its clock is off by +/- OFFSET (default 600s)
  power-off[:LEN]    off for LEN once a day (default 1h, at most 12h): no answer, a gap in the
                     block-load profile, events 101/102
Durations: 500ms, 3s, 10m, 2h.";

fn parse_faults(s: &str) -> Result<FaultSpec, String> {
    s.parse().map_err(|e| format!("{e}"))
}

fn parse_period(s: &str) -> Result<u8, String> {
    match s.trim() {
        "15" => Ok(15),
        "30" => Ok(30),
        _ => Err("the capture period is 15 or 30 (minutes)".into()),
    }
}

impl SimArgs {
    /// The fleet configuration these arguments describe (the push target is resolved later).
    pub fn to_config(&self) -> FleetConfig {
        FleetConfig {
            meters: self.meters,
            base_address: self.base_address,
            port: self.port,
            seed: self.seed,
            transport: self.transport,
            push_to: None,
            faults: self.faults.clone().unwrap_or_default(),
            capture_period_min: self.capture_period,
            scheduled_outages: !self.no_outages,
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use clap::Parser;

    #[derive(Parser)]
    struct Cli {
        #[command(flatten)]
        sim: SimArgs,
    }

    #[test]
    fn parses_the_documented_flags() {
        let cli = Cli::try_parse_from([
            "sim",
            "--meters",
            "3",
            "--base-address",
            "127.9.0.1",
            "--port",
            "14059",
            "--seed",
            "42",
            "--transport",
            "hdlc",
            "--faults",
            "slow=5%:3s",
            "--capture-period",
            "30",
        ])
        .unwrap();
        let c = cli.sim.to_config();
        assert_eq!(
            (c.meters, c.port, c.seed, c.capture_period_min),
            (3, 14059, 42, 30)
        );
        assert_eq!(c.transport, Transport::Hdlc);
        assert_eq!(c.faults.rules.len(), 1);
        assert!(Cli::try_parse_from(["sim", "--capture-period", "20"]).is_err());
        assert!(Cli::try_parse_from(["sim", "--faults", "bogus=1%"]).is_err());
    }
}
