#!/usr/bin/perl
# GitLab::API::v4 (CPAN, Debian's libgitlab-api-v4-perl), unchanged, against
# the coordinator: the runner-management and pipeline calls a Perl user of
# GitLab writes. Two phases, with a runner running the build job between:
#
#   gitlab_api_v4_flow.pl create  PROJECT_ID
#       creates a pipeline; prints "pipeline=<id> build=<id> deploy=<id>"
#   gitlab_api_v4_flow.pl inspect PROJECT_ID PIPELINE_ID BUILD_ID DEPLOY_ID RUNNER_ID PROJECT_RUNNER_ID
#       checks the finished job, plays/cancels/retries the manual one, pages
#       through runners, updates and deletes one, cancels and retries a
#       pipeline; prints "perl GitLab::API::v4 flow OK"
#
# GITLAB_URL and GITLAB_PAT (root's personal access token) come from the
# environment. Any mismatch dies with what was expected and what came back.
use strict;
use warnings;
use GitLab::API::v4;
use JSON::PP ();

my $api = GitLab::API::v4->new(
    url           => "$ENV{GITLAB_URL}/api/v4",
    private_token => $ENV{GITLAB_PAT},
    retries       => 0,
);

sub check {
    my ($ok, $what) = @_;
    die "not ok: $what\n" unless $ok;
}

sub job_by_name {
    my ($jobs, $name) = @_;
    my @found = grep { $_->{name} eq $name } @$jobs;
    die "no job named $name among " . join(',', map { $_->{name} } @$jobs) . "\n" unless @found;
    return $found[0];
}

my ($phase, $project_id, @rest) = @ARGV;

if ($phase eq 'create') {
    my $pipeline = $api->create_pipeline($project_id, { ref => 'main' });
    check($pipeline->{id} && $pipeline->{ref} eq 'main', "create_pipeline: id and ref main");
    my $jobs = $api->pipeline_jobs($project_id, $pipeline->{id});
    my $build  = job_by_name($jobs, 'build');
    my $deploy = job_by_name($jobs, 'deploy');
    check($build->{status} eq 'pending', "build is pending, not $build->{status}");
    check($deploy->{status} eq 'created' || $deploy->{status} eq 'manual',
        "deploy waits (created or manual), not $deploy->{status}");
    print "pipeline=$pipeline->{id} build=$build->{id} deploy=$deploy->{id}\n";
    exit 0;
}

die "usage: $0 create|inspect PROJECT_ID ...\n" unless $phase eq 'inspect';
my ($pipeline_id, $build_id, $deploy_id, $runner_id, $project_runner_id) = @rest;

# --- who am I, which project -------------------------------------------
my $me = $api->current_user();
check($me->{username} eq 'root', "current_user is root, not $me->{username}");
my $project = $api->project($project_id);
check($project->{id} == $project_id, "project $project_id");
my $projects = $api->projects({ search => $project->{name} });
check((grep { $_->{id} == $project_id } @$projects), "projects(search) finds the project");

# --- the job the runner ran ----------------------------------------------
my $build = $api->job($project_id, $build_id);
check($build->{status} eq 'success', "build succeeded, not $build->{status}");
check($build->{runner} && $build->{runner}{id} == $runner_id, "build ran on runner $runner_id");
my $runner_jobs = $api->runner_jobs($runner_id);
check((grep { $_->{id} == $build_id } @$runner_jobs), "runner_jobs lists the build");
my $project_jobs = $api->jobs($project_id, { scope => ['success'] });
check((grep { $_->{id} == $build_id } @$project_jobs), "jobs(scope success) lists the build");

# --- the manual job: play, cancel, retry ---------------------------------
my $pipeline = $api->pipeline($project_id, $pipeline_id);
check($pipeline->{status} eq 'success', "pipeline with a waiting manual job is success, not $pipeline->{status}");
my $played = $api->play_job($project_id, $deploy_id);
check($played->{status} eq 'pending', "played deploy is pending, not $played->{status}");
my $canceled = $api->cancel_job($project_id, $deploy_id);
check($canceled->{status} eq 'canceled', "canceled deploy, not $canceled->{status}");
my $retried = $api->retry_job($project_id, $deploy_id);
check($retried->{id} != $deploy_id && $retried->{name} eq 'deploy', "retry_job gives a new deploy job");
my $pipelines = $api->pipelines($project_id);
check((grep { $_->{id} == $pipeline_id } @$pipelines), "pipelines lists the pipeline");

# --- a second pipeline: cancel it all, retry it all ----------------------
my $second = $api->create_pipeline($project_id, { ref => 'main' });
my $after_cancel = $api->cancel_pipeline_jobs($project_id, $second->{id});
check($after_cancel->{status} eq 'canceled', "cancel_pipeline_jobs: canceled, not $after_cancel->{status}");
my $after_retry = $api->retry_pipeline_jobs($project_id, $second->{id});
check($after_retry->{status} eq 'pending' || $after_retry->{status} eq 'created',
    "retry_pipeline_jobs: pending again, not $after_retry->{status}");

# --- runners: pages, filters, one runner, update, delete ----------------
my $all = $api->paginator('all_runners', { per_page => 10 })->all();
my %ids = map { $_->{id} => 1 } @$all;
check(@$all == keys %ids, "paging through all_runners repeats no runner");
check(@$all == $ENV{RUNNER_COUNT}, "all_runners pages give $ENV{RUNNER_COUNT} runners, not " . scalar(@$all));
my $project_type = $api->all_runners({ type => 'project_type' });
check(@$project_type == 1 && $project_type->[0]{id} == $project_runner_id, "all_runners(type project_type)");
my $first_page = $api->all_runners({ tag_list => 'perl' });
check(@$first_page == 20, "all_runners(tag_list perl): a first page of 20 by default, not " . scalar(@$first_page));
my $tagged = $api->paginator('all_runners', { tag_list => 'perl' })->all();
check(@$tagged == $ENV{TAGGED_COUNT}, "all_runners(tag_list perl) pages give $ENV{TAGGED_COUNT}, not " . scalar(@$tagged));
my $owned = $api->runners();
check(ref $owned eq 'ARRAY', "runners() is a list");
my $for_project = $api->project_runners($project_id);
check((grep { $_->{id} == $project_runner_id } @$for_project), "project_runners lists the project's runner");

my $one = $api->runner($project_runner_id);
check($one->{runner_type} eq 'project_type', "runner(id) is the project runner");
check(!exists $one->{token}, "runner(id) does not show a token");
my $updated = $api->update_runner($project_runner_id,
    { description => 'renamed by perl', tag_list => ['zeta', 'alpha'], paused => JSON::PP::true() });
check($updated->{description} eq 'renamed by perl', "update_runner: description");
check(join(',', sort @{ $updated->{tag_list} }) eq 'alpha,zeta', "update_runner: tag_list");
check($updated->{paused}, "update_runner: paused");
$api->delete_runner($project_runner_id);
check(!defined $api->runner($project_runner_id), "a deleted runner is 404 (undef)");

print "perl GitLab::API::v4 flow OK\n";
